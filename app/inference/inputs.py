"""Reading prediction inputs from a request: JSON texts, base64 images, or multipart files.

Every input is checked on its own here, before it can join a batch with other requests'
inputs, and a bad one is a 422 naming it: the body's size (app/inference/body.py), inputs
per request, each text cleaned as datasets clean it, each image's bytes, format and pixel
count (from its header, off the event loop). Decoding images and tokenizing happen later,
in the batch; an input that fails there still fails only its own request (the batcher).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from app.config import Settings
from app.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType
from app.inference.body import body_limit, capped, disconnected, read_body
from ml.inference.errors import InputError
from ml.inference.images import check_image
from ml.text_input import TextRejected, clean_text

Kind = Literal["image", "text"]
MAX_TOP_K = 1000
# A form field's coverage: plain decimal notation, no sign, exponent, spaces or nan/inf (the
# pattern /openapi.json states), and no longer than any float needs.
_DECIMAL = re.compile(r"[0-9]*\.?[0-9]+")
_MAX_DECIMAL_CHARS = 32
# Bodies up to this size are parsed on the event loop (tens of microseconds); larger ones
# in a thread, so that a 60 MB body's json.loads and base64 decoding block no other request.
_INLINE_BODY_BYTES = 64 * 1024
_MAX_FORM_FIELDS = 16  # multipart: `top_k`, `coverage` and room for a client's harmless extras
_MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True)
class PredictInputs:
    kind: Kind
    items: list[bytes] | list[str]
    top_k: int | None
    coverage: float | None = None  # regression: the interval's coverage, in (0, 1)
    field: str = "inputs"  # how errors name an input: inputs[i], or file[i] for multipart


def _invalid(field: str, message: str, code: str = "invalid_input") -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", code=code, errors=[{"field": field, "message": message}]
    )


def input_problem(field: str, error: InputError) -> Unprocessable:
    """The 422 for one bad input, named as the request named it: inputs[i], or file[i]."""
    return _invalid(f"{field}[{error.index}]", error.message)


def _top_k(raw: Any) -> int | None:
    """JSON's top_k: an integer, never a string, float or boolean coerced into one."""
    if raw is None:
        return None
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise _invalid("top_k", f"must be a JSON integer, not {_json_type(raw)}")
    return _top_k_range(raw)


def _form_top_k(raw: Any) -> int | None:
    """Multipart's top_k: a form field is text, so decimal digits and nothing else."""
    if raw is None:
        return None
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise _invalid("top_k", f"must be an integer between 1 and {MAX_TOP_K}, in digits")
    return _top_k_range(int(raw))


def _top_k_range(value: int) -> int:
    if not 1 <= value <= MAX_TOP_K:
        raise _invalid("top_k", f"must be an integer between 1 and {MAX_TOP_K}")
    return value


def _coverage(raw: Any) -> float | None:
    """JSON's coverage: a number strictly between 0 and 1 (never a string or boolean)."""
    if raw is None:
        return None
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        raise _invalid("coverage", f"must be a JSON number, not {_json_type(raw)}")
    return _coverage_range(raw)


def _form_coverage(raw: Any) -> float | None:
    """Multipart's coverage: a form field is text, so a decimal such as 0.9 and nothing else."""
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > _MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(raw):
        raise _invalid("coverage", "must be a number between 0 and 1 (exclusive), such as 0.9")
    return _coverage_range(float(raw))


def _coverage_range(value: float) -> float:
    # Compared before any conversion (a huge JSON integer does not fit a float), and written
    # so that NaN, which json.loads accepts, fails too.
    if not 0 < value < 1:
        raise _invalid("coverage", "must be a number between 0 and 1 (exclusive), such as 0.9")
    return float(value)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", float: "a float"}
    names |= {list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _check_count(n: int, settings: Settings) -> None:
    if n == 0:
        raise _invalid("inputs", "send at least one input")
    if n > settings.max_inputs_per_request:
        raise _invalid(
            "inputs",
            f"{n} inputs in one request; the limit is {settings.max_inputs_per_request} "
            "(HONE_MAX_INPUTS_PER_REQUEST): split the request",
            "too_many_inputs",
        )


def _clean(text: str, index: int, settings: Settings) -> str:
    """The text exactly as a dataset row would be read (ml/text_input.py), or a 422 for this
    input alone, before it can join a batch."""
    try:
        return clean_text(text, settings.max_text_chars)
    except TextRejected as exc:
        if exc.reason == "too_large":
            raise _invalid(
                f"inputs[{index}]",
                f"text of {len(text.strip())} characters; the limit is "
                f"{settings.max_text_chars} (HONE_MAX_TEXT_CHARS, the same cap datasets have)",
                "text_too_long",
            ) from None
        raise _invalid(f"inputs[{index}]", exc.detail, "invalid_text") from None


def _b64decode(value: str) -> bytes:
    """Standard base64, also as MIME writes it (RFC 2045: lines of 76 characters, which
    `base64` and most encoders produce); any other character outside the alphabet is refused."""
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "").replace("\n", "")
    return base64.b64decode(value, validate=True)


def _check_image(data: bytes, field: str, settings: Settings) -> bytes:
    if not data:
        raise _invalid(field, "the image is empty")
    if len(data) > settings.max_image_bytes:
        raise PayloadTooLarge(
            f"{field}: image of {len(data)} bytes; the limit is {settings.max_image_bytes} "
            "(HONE_MAX_IMAGE_BYTES, the same cap datasets have)",
            code="image_too_large",
            errors=[{"field": field, "message": "image too large"}],
        )
    return data


def _parse_json(raw: bytearray, settings: Settings) -> PredictInputs:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _invalid("body", f"not valid JSON: {exc}") from None
    return _from_json(body, settings)


def _from_json(body: Any, settings: Settings) -> PredictInputs:
    if not isinstance(body, dict) or "inputs" not in body:
        raise _invalid("inputs", 'send {"inputs": [...]} (texts, or {"image_base64": ...})')
    inputs = body["inputs"]
    if not isinstance(inputs, list):
        raise _invalid("inputs", "must be a list")
    _check_count(len(inputs), settings)
    top_k = _top_k(body.get("top_k"))
    coverage = _coverage(body.get("coverage"))
    if all(isinstance(x, str) for x in inputs):
        texts = [_clean(text, i, settings) for i, text in enumerate(inputs)]
        return PredictInputs("text", texts, top_k, coverage)
    images: list[bytes] = []
    for i, item in enumerate(inputs):
        field = f"inputs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("image_base64"), str):
            raise _invalid(field, 'expected a text, or an object {"image_base64": "..."}')
        encoded = item["image_base64"]
        try:
            data = _b64decode(encoded)
        except (binascii.Error, ValueError):
            hint = " (send the base64 alone, without the data: URL prefix)"
            message = "is not valid base64" + (hint if encoded.startswith("data:") else "")
            raise _invalid(f"{field}.image_base64", message) from None
        images.append(_check_image(data, field, settings))
    return PredictInputs("image", images, top_k, coverage)


def _check_images(inputs: PredictInputs, settings: Settings) -> None:
    for i, data in enumerate(inputs.items):
        try:
            check_image(data, i, settings.max_image_pixels)
        except InputError as exc:
            raise input_problem(inputs.field, exc) from None


async def read_inputs(request: Request, settings: Settings) -> PredictInputs:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = body_limit(settings)
    if content_type == "application/json":
        raw = await read_body(request, limit)
        if len(raw) <= _INLINE_BODY_BYTES:
            inputs = _parse_json(raw, settings)
        else:
            inputs = await run_in_threadpool(_parse_json, raw, settings)
        del raw
    elif content_type == "multipart/form-data":
        inputs = await _read_form(capped(request, limit), settings)
    else:
        raise UnsupportedMediaType(
            'Send JSON {"inputs": [...]} or multipart/form-data with `file` parts.',
            code="unsupported_media_type",
        )
    if inputs.kind == "image":
        await run_in_threadpool(_check_images, inputs, settings)
    return inputs


async def _read_form(request: Request, settings: Settings) -> PredictInputs:
    """Files spool to disk as they come (python-multipart; ordinary fields are capped at
    64 KiB each); the whole body is capped by ``request`` itself."""
    try:
        async with request.form(
            max_files=settings.max_inputs_per_request + 1,
            max_fields=_MAX_FORM_FIELDS,
            max_part_size=_MAX_FIELD_BYTES,
        ) as form:
            files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
            _check_count(len(files), settings)
            images = [
                _check_image(await f.read(settings.max_image_bytes + 1), f"file[{i}]", settings)
                for i, f in enumerate(files)
            ]
            top_k = _form_top_k(form.get("top_k"))
            coverage = _form_coverage(form.get("coverage"))
    except ClientDisconnect:
        raise disconnected() from None
    return PredictInputs("image", images, top_k, coverage, field="file")
