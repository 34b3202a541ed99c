"""What an upload sends: a file read in chunks, bytes, or a folder zipped as it is sent.

httpx's multipart encoder reads a file part 64 KiB at a time (`FileField.render_data`), so a
file object is never read whole. A file's length is known up front (Content-Length); a
folder's zip is written into a sink that the request body drains chunk by chunk, so the zip
is never whole in memory or on disk and is sent with chunked transfer encoding (the API's
multipart parser reads the body as a stream and needs no Content-Length). Each reader reports
progress as `progress(bytes sent, total or None)`.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

Progress = Callable[[int, int | None], None]
CHUNK = 64 * 1024
# Formats that are compressed already: stored as they are, deflating them gains nothing.
_STORED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".zip", ".gz"})


class FileReader:
    """A seekable binary stream (a file or bytes) that reports what has been read of it.
    `fileno`, `tell` and `seek` let httpx find its length without reading it."""

    def __init__(self, raw: BinaryIO, total: int | None, progress: Progress | None) -> None:
        self.raw, self.total, self.progress = raw, total, progress
        self.name = getattr(raw, "name", "upload")

    def fileno(self) -> int:
        return self.raw.fileno()

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        if chunk and self.progress is not None:
            self.progress(self.raw.tell(), self.total)
        return chunk

    def close(self) -> None:
        self.raw.close()


class StreamReader:
    """A read-only stream over a generator of chunks, of unknown length: no `seek`, `tell`
    or `fileno`, so httpx sends it chunked instead of measuring it."""

    def __init__(self, chunks: Iterator[bytes], progress: Progress | None) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._done = False
        self.sent = 0
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                self._done = True
        cut = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        chunk = bytes(self._buffer[:cut])
        del self._buffer[:cut]
        if chunk:
            self.sent += len(chunk)
            if self.progress is not None:
                self.progress(self.sent, None)
        return chunk

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()


class _Sink:
    """Where the zip writes: bytes collected until the body drains them."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        parts, self._parts = self._parts, []
        yield from (p for p in parts if p)


def folder_files(folder: Path) -> list[tuple[Path, str]]:
    """(path, name in the zip) of every file under `folder`, hidden ones left out, in a
    stable order (so a retried upload zips the same bytes and its idempotency key holds)."""
    found: list[tuple[Path, str]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                path = Path(root) / name
                found.append((path, path.relative_to(folder).as_posix()))
    return found


def zip_chunks(files: list[tuple[Path, str]]) -> Iterator[bytes]:
    """The zip of `files`, chunk by chunk, as it is written."""
    sink = _Sink()
    with zipfile.ZipFile(cast(IO[bytes], sink), "w") as archive:  # a write-only sink
        for path, name in files:
            info = zipfile.ZipInfo.from_file(path, name)
            stored = path.suffix.lower() in _STORED_SUFFIXES
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w") as entry:
                while chunk := source.read(CHUNK):
                    entry.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


@dataclass(frozen=True)
class Upload:
    """A source ready to send: its file name, and a fresh reader for each attempt."""

    filename: str
    open: Callable[[Progress | None], FileReader | StreamReader]
    folder: bool = False


def prepare(source: str | os.PathLike[str] | bytes, filename: str | None) -> Upload:
    """An Upload for a path to a file, a path to a folder of images, or bytes."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = filename or _sniff_name(data)
        return Upload(name, lambda progress: FileReader(io.BytesIO(data), len(data), progress))
    path = Path(source).expanduser()
    if path.is_dir():
        files = folder_files(path)
        if not files:
            raise ValueError(f"{path} has no files to upload")
        name = filename or f"{path.resolve().name or 'dataset'}.zip"
        return Upload(name, lambda progress: StreamReader(zip_chunks(files), progress), True)
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")

    def _open(progress: Progress | None) -> FileReader:
        raw = path.open("rb")
        return FileReader(raw, os.fstat(raw.fileno()).st_size, progress)

    return Upload(filename or path.name, _open)


def _sniff_name(data: bytes) -> str:
    """A file name whose extension says what bytes without one are: a zip, JSON Lines or CSV."""
    if data[:4] == b"PK\x03\x04":
        return "upload.zip"
    return "upload.jsonl" if data.lstrip()[:1] == b"{" else "upload.csv"
