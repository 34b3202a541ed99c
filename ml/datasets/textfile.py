"""Reading an uploaded text file as UTF-8, failing with the exact place when it is not."""

import codecs
from collections.abc import Iterator
from functools import partial
from typing import BinaryIO

from ml.datasets.errors import IngestError

_BOM = codecs.BOM_UTF8
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


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


def utf8_lines(stream: BinaryIO, name: str, max_line_bytes: int) -> Iterator[tuple[int, str]]:
    """(line number, line with its ending), BOM removed; raises IngestError on bad bytes.

    Splitting on b"\\n" before decoding is safe: 0x0A never occurs inside a UTF-8 sequence.
    Lines are bounded so one giant line cannot exhaust memory.
    """
    offset = 0
    for number, raw in enumerate(iter(partial(stream.readline, max_line_bytes + 1), b""), 1):
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
