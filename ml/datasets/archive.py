"""Opening a user's zip without trusting it.

Nothing is ever extracted by name: callers read entry bytes through ``read_entry``, which counts
the bytes it really decompresses instead of believing the sizes the zip declares.
"""

import copy
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits
from ml.datasets.records import SkipExampleError

_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_COMMENT = 0xFFFF
# ZipFile parses the whole central directory into memory before we can count its entries, so
# the directory's size is bounded first: this many bytes per allowed entry is far more than
# real names need.
_DIRECTORY_BYTES_PER_ENTRY = 512
# bzip2 and lzma decompress a whole read in one call, unbounded; deflate honours max_length.
_SAFE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


class ByteBudget:
    """Bytes actually decompressed across one archive, against the upload's cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def consume(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise IngestError(
                "archive_too_large",
                f"The zip decompresses to more than {self.limit} bytes. "
                "Split the dataset or upload fewer/smaller images.",
                status=413,
            )


def _directory_extent(fp: BinaryIO) -> tuple[int, int]:
    """(entry count, central directory bytes) from the end-of-central-directory record."""
    fp.seek(0, 2)
    size = fp.tell()
    fp.seek(max(0, size - _EOCD.size - _MAX_COMMENT))
    tail = fp.read()
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < _EOCD.size:
        raise _not_a_zip()
    _, _, _, _, entries, dir_size, _, _ = _EOCD.unpack_from(tail, pos)
    if (entries == 0xFFFF or dir_size == 0xFFFFFFFF) and pos >= _ZIP64_LOCATOR.size:
        sig, _, offset, _ = _ZIP64_LOCATOR.unpack_from(tail, pos - _ZIP64_LOCATOR.size)
        if sig == b"PK\x06\x07":
            fp.seek(offset)
            record = fp.read(_ZIP64_EOCD.size)
            if len(record) < _ZIP64_EOCD.size or record[:4] != b"PK\x06\x06":
                raise _not_a_zip()
            entries, dir_size = _ZIP64_EOCD.unpack(record)[7:9]
    return entries, dir_size


def _not_a_zip() -> IngestError:
    return IngestError(
        "not_a_zip",
        "The file is not a readable zip archive. Create it with a standard zip tool "
        "(e.g. `zip -r data.zip folder/`) and upload it again.",
        status=400,
    )


def _is_unsafe_name(name: str) -> bool:
    path = name.replace("\\", "/")
    return path.startswith("/") or bool(_DRIVE.match(path)) or ".." in path.split("/")


def check_entries(infos: list[zipfile.ZipInfo], limits: IngestLimits) -> None:
    """Reject archives that try to escape, link, hide or bomb; raises IngestError."""
    if len(infos) > limits.max_entries:
        raise IngestError(
            "archive_too_large",
            f"The zip has {len(infos)} entries; at most {limits.max_entries} are allowed.",
            status=413,
        )
    declared = 0
    for info in infos:
        if _is_unsafe_name(info.filename):
            raise IngestError(
                "unsafe_archive_path",
                f"The zip entry {info.filename!r} points outside the archive (absolute path, "
                "drive letter or '..'). Re-create the zip from inside the dataset folder.",
                status=400,
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise IngestError(
                "archive_symlink",
                f"The zip entry {info.filename!r} is a symbolic link. Zip the files themselves, "
                "not links to them (leave out `zip --symlinks`).",
                status=400,
            )
        if info.flag_bits & 0x1:
            raise IngestError(
                "encrypted_archive",
                f"The zip entry {info.filename!r} is password-protected. "
                "Upload an unencrypted zip.",
                status=400,
            )
        if info.compress_type not in _SAFE_METHODS:
            raise IngestError(
                "unsupported_compression",
                f"The zip entry {info.filename!r} uses a compression method Hone does not read. "
                "Re-create the zip with standard (deflate) compression.",
                status=400,
            )
        declared += info.file_size
    if declared > limits.max_uncompressed_bytes:
        raise IngestError(
            "archive_too_large",
            f"The zip declares {declared} bytes of content; at most "
            f"{limits.max_uncompressed_bytes} are allowed. Split the dataset.",
            status=413,
        )


def open_archive(path: Path, limits: IngestLimits) -> zipfile.ZipFile:
    """Open a structurally acceptable zip (the caller closes it); raises IngestError."""
    with path.open("rb") as fp:
        entries, dir_size = _directory_extent(fp)
    if entries > limits.max_entries or dir_size > limits.max_entries * _DIRECTORY_BYTES_PER_ENTRY:
        raise IngestError(
            "archive_too_large",
            f"The zip has {entries} entries in a {dir_size}-byte directory; at most "
            f"{limits.max_entries} entries are allowed.",
            status=413,
        )
    try:
        archive = zipfile.ZipFile(path)
    # NotImplementedError: a zip version or feature the zipfile module does not read
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
        raise _not_a_zip() from error
    try:
        check_entries(archive.infolist(), limits)
    except BaseException:
        archive.close()
        raise
    return archive


def _too_large(max_bytes: int) -> str:
    return f"larger than the {max_bytes}-byte limit for one file"


def read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ByteBudget, max_bytes: int
) -> bytes:
    """An entry's bytes, counted against ``budget`` as they are decompressed.

    Raises SkipExampleError ("too_large", "corrupt") for this entry alone, and IngestError when
    the whole archive's budget is spent.
    """
    if info.file_size > max_bytes:  # declared too big: no need to decompress to know
        raise SkipExampleError("too_large", _too_large(max_bytes))
    # zipfile stops at the declared size; lift that so a lying entry shows its real length to
    # our counters instead of being silently cut (and its CRC still checked at the real end).
    probe = copy.copy(info)
    probe.file_size = 1 << 62
    chunks: list[bytes] = []
    total = 0
    try:
        with archive.open(probe) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                budget.consume(len(chunk))
                if total > max_bytes:
                    raise SkipExampleError("too_large", _too_large(max_bytes))
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise SkipExampleError("corrupt", f"damaged inside the zip ({error})") from error
    except NotImplementedError as error:  # exotic zip features, or damage that looks like them
        raise SkipExampleError(
            "corrupt", f"uses a zip feature Hone cannot read ({error})"
        ) from error
    if total != info.file_size:
        raise SkipExampleError(
            "corrupt", f"damaged inside the zip ({total} bytes, the zip declares {info.file_size})"
        )
    return b"".join(chunks)
