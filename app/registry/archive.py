"""A model version's artifact as one zip file: what `GET .../artifact` sends, so a team can take
its model out of Hone.

The zip holds every file of the published artifact at its root (model.safetensors,
config.json, hf/ with the transformers config and tokenizer, the ONNX files when there are
any) plus SHA256SUMS, in `sha256sum` format, written last. A version is immutable, so its zip
is built once per host into the local cache and served from there; the cache may lose it at
any moment and it is then built again. The build is deterministic (sorted entries, fixed
timestamps and modes), so a rebuilt zip has the same bytes and the same sha256.

The zip is written through a stream that cannot seek, so zipfile puts each entry's sizes and
CRC in a data descriptor after its data instead of seeking back: the zip's sha256 is computed
while it is written, and no byte is read twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from app.storage.errors import StorageUnavailable
from app.storage.locks import host_lock
from app.storage.store import PUBLISHED

SUMS_FILE = "SHA256SUMS"
CHUNK = 1 << 20
# The earliest time a zip can say: no build time leaks into the bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16  # a regular file, rw-r--r--
# Weights barely compress (deflate saves a few percent of float32 for a full pass over
# hundreds of MB); configs and tokenizers shrink several times.
STORED_SUFFIXES = (".safetensors", ".onnx", ".bin")


@dataclass(frozen=True)
class Archive:
    """An open, complete zip: read it from `handle`, even if the cache drops the file meanwhile."""

    handle: IO[bytes]
    size: int
    sha256: str


def archive_dir(cache_dir: Path) -> Path:
    return cache_dir / "archives"


def open_archive(cache_dir: Path, version_id: str, artifact: Path) -> Archive:
    """The version's zip, built from the artifact directory `artifact` unless already cached.

    Keyed by the version's id, not its number: a number can be given again after a deletion.
    """
    folder = archive_dir(cache_dir)
    cached = _open_cached(folder, version_id)
    if cached is not None:
        return cached
    # One build of a version at a time on this host (threads and processes alike).
    with host_lock(folder / f".{version_id}.lock"):
        cached = _open_cached(folder, version_id)  # another request built it meanwhile
        if cached is None:
            _build(artifact, folder, version_id)
            cached = _open_cached(folder, version_id)
    if cached is None:
        raise StorageUnavailable(f"the archive of {version_id} vanished as it was written")
    return cached


def forget_archive(cache_dir: Path, version_id: str) -> None:
    folder = archive_dir(cache_dir)
    for name in (f"{version_id}.zip", f"{version_id}.json", f".{version_id}.lock"):
        path = folder / name
        path.unlink(missing_ok=True)


def _open_cached(folder: Path, version_id: str) -> Archive | None:
    """The cached zip, open, when it and its digest are both there and agree on the size."""
    try:
        meta = json.loads((folder / f"{version_id}.json").read_bytes())
        sha256, size = str(meta["sha256"]), int(meta["size"])
        handle = open(folder / f"{version_id}.zip", "rb")  # noqa: SIM115 (the response closes it)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if os.fstat(handle.fileno()).st_size != size:
        handle.close()
        return None
    return Archive(handle, size, sha256)


def _build(artifact: Path, folder: Path, version_id: str) -> None:
    """Write the zip under a temporary name, then its digest; each appears whole by a rename."""
    files: dict[str, int] = json.loads((artifact / PUBLISHED).read_bytes())["files"]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{version_id}.zip.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as raw:
            out = _HashingWriter(raw)
            write_zip(out, artifact, sorted(files))
        meta = {"sha256": out.sha256.hexdigest(), "size": out.size}
        os.replace(tmp, folder / f"{version_id}.zip")
    finally:
        tmp.unlink(missing_ok=True)
    meta_tmp = folder / f".{version_id}.json.tmp-{uuid.uuid4().hex}"
    meta_tmp.write_text(json.dumps(meta))
    os.replace(meta_tmp, folder / f"{version_id}.json")


def write_zip(out: _HashingWriter, root: Path, names: list[str]) -> None:
    """The zip of `names` (paths relative to `root`, "/"-separated) and their SHA256SUMS."""
    sums: list[str] = []
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            path = root / name
            info = _entry(name, path.stat().st_size)
            digest = hashlib.sha256()
            with path.open("rb") as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
            sums.append(f"{digest.hexdigest()}  {name}\n")
        archive.writestr(_entry(SUMS_FILE, None), "".join(sums))


def _entry(name: str, size: int | None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
    info.external_attr = FILE_MODE
    info.create_system = 3  # Unix, whatever this host is: the mode bits mean the same
    stored = name.endswith(STORED_SUFFIXES)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    if size is not None:
        info.file_size = size  # lets zipfile choose ZIP64 up front for a file over 4 GiB
    return info


class _HashingWriter:
    """A write-only stream that hashes and counts what passes through it. It has no tell() or
    seek(), which is what makes zipfile stream (data descriptors) rather than seek back."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        """The caller closes the file underneath; zipfile never closes a stream it was given."""
