"""Streaming multipart parsing: file parts go straight to disk, never whole into memory.

The byte cap is enforced while reading the request body, so an oversized upload stops with
413 as soon as it crosses the limit, and whatever was written is removed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from app.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType

_MAX_FIELD_BYTES = 64 * 1024
# Bounds on what the parser holds in memory: a form with more, or bigger, is not a dataset
# upload (python-multipart itself bounds each part's header count and size). Every byte
# counts against the body cap as well, which allows the fields and their headers on top.
MAX_PARTS = 32
_BODY_SLACK_BYTES = MAX_PARTS * (_MAX_FIELD_BYTES + 16 * 1024)


@dataclass
class UploadedFile:
    path: Path
    filename: str
    size: int
    sha256: str


@dataclass
class ParsedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    headers: dict[bytes, bytes] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    sink: IO[bytes] | None = None
    hasher: hashlib._Hash | None = None
    size: int = 0


class _FormWriter:
    """Callbacks for python-multipart's push parser: writes file parts to `directory`."""

    def __init__(self, directory: Path, max_bytes: int, file_fields: frozenset[str]) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.file_fields = file_fields
        self.form = ParsedForm()
        self.part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._file_bytes = 0
        self.parts = 0
        self.ended = False  # the closing boundary was read

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest(
                f"The form has more than {MAX_PARTS} parts; a dataset upload needs a `file` part "
                "and a few fields (task, name, ...).",
                code="too_many_parts",
            )

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = self.part.headers.get(b"content-disposition", b"")
        _, params = parse_options_header(disposition)
        self.part.name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            name = self.part.name
            if name not in self.file_fields:
                expected = ", ".join(f"`{n}`" for n in sorted(self.file_fields))
                raise Unprocessable(
                    f"Unexpected file part {name[:100]!r}: send the file as {expected}.",
                    code="unexpected_file_part",
                    errors=[{"field": name[:100], "message": f"expected {expected}"}],
                )
            if name in self.form.files:
                raise BadRequest(f"Send one `{name}` part, not several.")
            # The client's part name and file name never become a path: parts are numbered.
            self.part.filename = os.path.basename(filename.decode("utf-8", "replace"))[:255]
            self.part.sink = open(self.directory / f"part-{self.parts}", "wb")  # noqa: SIM115
            self.part.hasher = hashlib.sha256()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        self.part.size += len(chunk)
        if self.part.sink is None:
            if self.part.size > _MAX_FIELD_BYTES:
                raise BadRequest(f"Form field `{self.part.name}` is too long.")
            self.part.buffer += chunk
            return
        self._file_bytes += len(chunk)
        if self._file_bytes > self.max_bytes:
            raise _too_large(self.max_bytes)
        self.part.sink.write(chunk)
        assert self.part.hasher is not None
        self.part.hasher.update(chunk)

    def on_part_end(self) -> None:
        part = self.part
        if part.sink is None:
            value = part.buffer.decode("utf-8", "replace")
            if "\x00" in value:
                # No database column can hold a NUL (PostgreSQL text refuses it).
                raise Unprocessable(
                    f"Form field {part.name[:100]!r} contains a NUL character.",
                    code="invalid_field",
                    errors=[{"field": part.name[:100], "message": "contains a NUL character"}],
                )
            self.form.fields[part.name] = value
            return
        part.sink.close()
        assert part.hasher is not None
        self.form.files[part.name] = UploadedFile(
            path=Path(part.sink.name),
            filename=part.filename or "",
            size=part.size,
            sha256=part.hasher.hexdigest(),
        )

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self.part.sink is not None and not self.part.sink.closed:
            self.part.sink.close()


async def parse_multipart(
    request: Request,
    directory: Path,
    max_bytes: int,
    file_fields: frozenset[str] = frozenset({"file"}),
) -> ParsedForm:
    """Parse the request body into `directory`. The caller owns (and cleans up) the directory.

    Only parts named in `file_fields` may carry files; every byte of the body, fields and part
    headers included, counts against `max_bytes` (plus a small allowance for the fields), and
    a body that ends before its closing boundary is refused as cut off.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType(
            "Send the dataset as multipart/form-data with a `file` part "
            "(curl: -F file=@data.zip -F task=image_classification).",
            code="multipart_required",
        )
    declared = request.headers.get("content-length")
    body_cap = max_bytes + _BODY_SLACK_BYTES
    if declared and declared.isdigit() and int(declared) > body_cap:
        raise _too_large(max_bytes)
    directory.mkdir(parents=True, exist_ok=True)
    writer = _FormWriter(directory, max_bytes, file_fields)
    callbacks = {
        name: getattr(writer, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_end",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_cap:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}", code="malformed_multipart") from exc
    finally:
        writer.close()
    if not writer.ended:
        said = f" of the {declared} that Content-Length announced" if declared else ""
        raise BadRequest(
            f"The multipart body was cut off: {received} bytes arrived{said}, without the "
            "closing boundary. Nothing was stored; upload again.",
            code="truncated_body",
        )
    return writer.form


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {max_bytes} bytes (HONE_MAX_UPLOAD_BYTES). "
        "Split the dataset or ask the operator to raise it.",
        code="upload_too_large",
    )
