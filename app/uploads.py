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

from app.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

_MAX_FIELD_BYTES = 64 * 1024


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

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.form = ParsedForm()
        self.part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        self.part = _Part()

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
            self.part.filename = os.path.basename(filename.decode("utf-8", "replace"))
            if self.part.name in self.form.files:
                raise BadRequest(f"Send one `{self.part.name}` part, not several.")
            self.part.sink = open(self.directory / f"part-{self.part.name}", "wb")  # noqa: SIM115
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
            raise PayloadTooLarge(
                f"The upload is larger than the limit of {self.max_bytes} bytes "
                "(HONE_MAX_UPLOAD_BYTES). Split the dataset or ask the operator to raise it.",
                code="upload_too_large",
            )
        self.part.sink.write(chunk)
        assert self.part.hasher is not None
        self.part.hasher.update(chunk)

    def on_part_end(self) -> None:
        part = self.part
        if part.sink is None:
            self.form.fields[part.name] = part.buffer.decode("utf-8", "replace")
            return
        part.sink.close()
        assert part.hasher is not None
        self.form.files[part.name] = UploadedFile(
            path=Path(part.sink.name),
            filename=part.filename or "",
            size=part.size,
            sha256=part.hasher.hexdigest(),
        )

    def close(self) -> None:
        if self.part.sink is not None and not self.part.sink.closed:
            self.part.sink.close()


async def parse_multipart(request: Request, directory: Path, max_bytes: int) -> ParsedForm:
    """Parse the request body into `directory`. The caller owns (and cleans up) the directory."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UnsupportedMediaType(
            "Send the dataset as multipart/form-data with a `file` part "
            "(curl: -F file=@data.zip -F task=image_classification).",
            code="multipart_required",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + _MAX_FIELD_BYTES:
        raise PayloadTooLarge(
            f"The upload is larger than the limit of {max_bytes} bytes (HONE_MAX_UPLOAD_BYTES).",
            code="upload_too_large",
        )
    directory.mkdir(parents=True, exist_ok=True)
    writer = _FormWriter(directory, max_bytes)
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
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"Malformed multipart body: {exc}", code="malformed_multipart") from exc
    finally:
        writer.close()
    return writer.form
