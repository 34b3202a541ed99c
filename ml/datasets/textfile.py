"""Reading an uploaded text file as UTF-8, failing with the exact place when it is not."""

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO

from ml.datasets.errors import IngestError

_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_LINE_END = re.compile(rb"\r\n|\r|\n")
_CHUNK = 256 * 1024


def _bad_encoding(name: str, offset: int, line: int, problem: str) -> IngestError:
    return IngestError(
        "bad_encoding",
        f"{name} is not UTF-8 text: {problem} at byte {offset} (line {line}). Save it as UTF-8 "
        "(Excel: 'CSV UTF-8 (Comma delimited)'; most editors: 'Save with encoding: UTF-8') "
        "and upload it again.",
        status=400,
    )


def _decode(raw: bytes, name: str, offset: int, line: int, *, final: bool) -> str:
    """Decode one piece of the file; ``offset``/``line`` say where it starts, for the message."""
    if offset == 0 and raw.startswith(_UTF16_BOMS):
        raise _bad_encoding(name, 0, 1, "it starts with a UTF-16 byte order mark")
    nul = raw.find(b"\0")
    if nul >= 0:
        where = line + raw.count(b"\n", 0, nul)
        raise _bad_encoding(name, offset + nul, where, "a NUL byte (binary data)")
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(raw, final=final)
    except UnicodeDecodeError as error:
        where = line + raw.count(b"\n", 0, error.start)
        raise _bad_encoding(
            name, offset + error.start, where, f"byte 0x{raw[error.start]:02x} is invalid"
        ) from error


def decode_head(head: bytes, name: str, *, complete: bool) -> str:
    """The first bytes of a file as text, BOM removed; a cut multi-byte character is dropped."""
    text = _decode(head, name, 0, 1, final=complete)
    return text.removeprefix("\ufeff")


def _raw_lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[bytes]:
    """Lines ending in \\n, \\r\\n or a lone \\r (old Mac files), each with its ending.

    A piece longer than ``max_line_bytes`` without any line ending is yielded as it is, for
    the caller to refuse; so memory stays bounded by one line plus one chunk.
    """
    pending = b""
    while True:
        chunk = stream.read(_CHUNK)
        pending += chunk
        start = 0
        for match in _LINE_END.finditer(pending):
            # A \r that ends what has been read may be the first half of a \r\n.
            if chunk and match.group() == b"\r" and match.end() == len(pending):
                break
            yield pending[start : match.end()]
            start = match.end()
        pending = pending[start:]
        if not chunk:
            if pending:
                yield pending
            return
        if len(pending) > max_line_bytes:
            yield pending
            return


def utf8_lines(stream: BinaryIO, name: str, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """(line number, line with its ending), BOM removed; raises IngestError on bad bytes.

    Lines end in \\n, \\r\\n or \\r, as Python's universal newlines read them. Splitting bytes
    before decoding is safe: 0x0A and 0x0D never occur inside a UTF-8 sequence. Lines are
    bounded so one giant line cannot exhaust memory.
    """
    offset = 0
    for number, raw in enumerate(_raw_lines(stream, max_line_bytes), 1):
        if len(raw) > max_line_bytes:
            raise IngestError(
                "line_too_long",
                f"Line {number} of {name} is longer than {max_line_bytes} bytes. Each record "
                "must be on its own line; long texts can be at most the text length limit.",
                status=400,
            )
        text = _decode(raw, name, offset, number, final=True)
        offset += len(raw)
        yield number, text.removeprefix("\ufeff") if number == 1 else text
