"""sha256 of weight files, computed once per file version and remembered under the cache dir."""

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from ml.backbones.atomic import write_atomically

_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024


def file_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of one file; a backbone's weights are hundreds of MB, so the result is memoised.

    The memo is keyed by resolved path, mtime and size: replacing the file (or a hub snapshot
    moving to a new blob) changes the key, so a stale hash is never returned.
    """
    resolved = path.resolve()
    stat = resolved.stat()
    key = hashlib.sha256(f"{resolved}\0{stat.st_mtime_ns}\0{stat.st_size}".encode()).hexdigest()
    memo = cache_dir / "backbones" / "sha256" / key
    if memo.is_file():
        remembered = memo.read_text().strip()
        if _HEX64.fullmatch(remembered):
            return remembered
    digest = hashlib.sha256()
    with resolved.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    write_atomically(memo, lambda temporary: temporary.write_text(value))
    return value


def files_sha256(paths: Sequence[Path], cache_dir: Path) -> str:
    """One file: its own sha256 (so it matches `sha256sum`); shards: a hash over name + hash."""
    if not paths:
        raise ValueError("no weight files to hash")
    if len(paths) == 1:
        return file_sha256(paths[0], cache_dir)
    ordered = sorted(paths, key=lambda path: path.name)
    listing = "".join(f"{path.name} {file_sha256(path, cache_dir)}\n" for path in ordered)
    return hashlib.sha256(listing.encode()).hexdigest()
