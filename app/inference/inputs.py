"""Reading prediction inputs from a request: JSON texts, base64 images, or multipart files.

Limits are checked here, before anything reaches a model: inputs per request, bytes per
image, characters per text. Decoding images and tokenizing happen later, off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Literal

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from ml.text_input import TextRejected, clean_text

Kind = Literal["image", "text"]
MAX_TOP_K = 1000


@dataclass(frozen=True)
class PredictInputs:
    kind: Kind
    items: list[bytes] | list[str]
    top_k: int | None
    field: str = "inputs"  # how errors name an input: inputs[i], or file[i] for multipart


def _invalid(field: str, message: str, code: str = "invalid_input") -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", code=code, errors=[{"field": field, "message": message}]
    )


def _top_k(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _invalid("top_k", "must be an integer") from None
    if isinstance(raw, bool) or not 1 <= value <= MAX_TOP_K or str(value) != str(raw).strip():
        raise _invalid("top_k", f"must be an integer between 1 and {MAX_TOP_K}")
    return value


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


def _from_json(body: Any, settings: Settings) -> PredictInputs:
    if not isinstance(body, dict) or "inputs" not in body:
        raise _invalid("inputs", 'send {"inputs": [...]} (texts, or {"image_base64": ...})')
    inputs = body["inputs"]
    if not isinstance(inputs, list):
        raise _invalid("inputs", "must be a list")
    _check_count(len(inputs), settings)
    top_k = _top_k(body.get("top_k"))
    if all(isinstance(x, str) for x in inputs):
        return PredictInputs(
            "text", [_clean(text, i, settings) for i, text in enumerate(inputs)], top_k
        )
    images: list[bytes] = []
    for i, item in enumerate(inputs):
        field = f"inputs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("image_base64"), str):
            raise _invalid(field, 'expected a text, or an object {"image_base64": "..."}')
        try:
            data = base64.b64decode(item["image_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(f"{field}.image_base64", "is not valid base64") from None
        images.append(_check_image(data, field, settings))
    return PredictInputs("image", images, top_k)


async def read_inputs(request: Request, settings: Settings) -> PredictInputs:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            raw = await request.body()
        except ClientDisconnect:
            raise BadRequest(
                "The client went away before sending the body.", code="client_disconnected"
            ) from None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise _invalid("body", f"not valid JSON: {exc}") from None
        return _from_json(body, settings)
    if content_type == "multipart/form-data":
        limit = settings.max_image_bytes * settings.max_inputs_per_request
        async with request.form(
            max_files=settings.max_inputs_per_request + 1, max_part_size=limit
        ) as form:
            files = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
            _check_count(len(files), settings)
            images = [
                _check_image(await f.read(settings.max_image_bytes + 1), f"file[{i}]", settings)
                for i, f in enumerate(files)
            ]
            top_k = _top_k(form.get("top_k"))
        return PredictInputs("image", images, top_k, field="file")
    raise UnsupportedMediaType(
        'Send JSON {"inputs": [...]} or multipart/form-data with `file` parts.',
        code="unsupported_media_type",
    )
