"""Taking a model version out of Hone: its archive streamed to disk, checked, extracted.

The API states the archive's sha256 in `X-Hone-Artifact-SHA256` and lists every file's
digest in the archive's `SHA256SUMS`. Both are checked; the files are extracted into a
staging folder beside `dest` and moved into place only once all of them match, so a
corrupted or cut-off download never leaves half a model in `dest`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

import httpx

from hone._transport import Transport, backoff
from hone.errors import APIConnectionError, IntegrityError
from hone.uploads import CHUNK, Progress

DIGEST_HEADER = "x-hone-artifact-sha256"
SUMS = "SHA256SUMS"
READ_TIMEOUT_SECONDS = 120.0


def download_artifact(
    transport: Transport, path: str, dest: Path, progress: Progress | None
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".hone-download-", dir=dest) as tmp:
        archive = Path(tmp) / "artifact.zip"
        _fetch(transport, path, archive, progress)
        staging = Path(tmp) / "files"
        names = _extract_checked(archive, staging)
        for name in names:
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, target)
    return dest


def _fetch(transport: Transport, path: str, archive: Path, progress: Progress | None) -> None:
    """The archive into `archive`, its sha256 checked; a connection lost mid-body is retried
    from the start (up to max_retries)."""
    timeout = httpx.Timeout(transport.timeout, read=max(transport.timeout, READ_TIMEOUT_SECONDS))
    attempt, expected, hasher = 0, "", hashlib.sha256()
    while True:
        try:
            with (
                transport.stream("GET", path, timeout=timeout) as response,
                archive.open("wb") as sink,
            ):
                expected = response.headers.get(DIGEST_HEADER, "").strip().lower()
                length = response.headers.get("content-length", "")
                total = int(length) if length.isdigit() else None
                hasher, sent = hashlib.sha256(), 0
                for chunk in response.iter_bytes(CHUNK):
                    sink.write(chunk)
                    hasher.update(chunk)
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent, total)
            break
        except httpx.TransportError as exc:
            if attempt >= transport.max_retries:
                raise APIConnectionError(transport.base_url, f"download cut off: {exc}") from exc
            time.sleep(backoff(attempt))
            attempt += 1
    if not expected:
        raise IntegrityError(f"the server sent no {DIGEST_HEADER} header for {path}")
    if hasher.hexdigest() != expected:
        raise IntegrityError(
            f"the archive's sha256 is {hasher.hexdigest()}, the server stated {expected}"
        )


def _extract_checked(archive: Path, staging: Path) -> list[str]:
    """Extract every file SHA256SUMS lists, each checked; return their relative paths."""
    try:
        with zipfile.ZipFile(archive) as zf:
            try:
                listing = zf.read(SUMS)
                sums = _parse_sums(listing.decode("utf-8"))
            except KeyError as exc:
                raise IntegrityError(f"the archive has no {SUMS}") from exc
            members = {i.filename for i in zf.infolist() if not i.is_dir()} - {SUMS}
            if members != set(sums):
                extra, missing = sorted(members - set(sums)), sorted(set(sums) - members)
                raise IntegrityError(
                    f"{SUMS} does not match the archive (unlisted: {extra}, missing: {missing})"
                )
            for name, digest in sums.items():
                target = staging / _safe(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                hasher = hashlib.sha256()
                with zf.open(name) as source, target.open("wb") as sink:
                    while chunk := source.read(CHUNK):
                        hasher.update(chunk)
                        sink.write(chunk)
                if hasher.hexdigest() != digest:
                    raise IntegrityError(f"{name}: sha256 {hasher.hexdigest()}, expected {digest}")
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"the download is not a valid zip: {exc}") from exc
    # Kept beside the files: `sha256sum -c SHA256SUMS` checks them again later.
    (staging / SUMS).write_bytes(listing)
    return [*sums, SUMS]


def _parse_sums(text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, _, name = line.partition(" *")  # sha256sum's binary-mode marker
        name = name.strip()
        if len(digest) != 64 or not name:
            raise IntegrityError(f"{SUMS} has a malformed line: {line[:120]!r}")
        sums[name] = digest.lower()
    return sums


def _safe(name: str) -> str:
    """`name` if it stays inside the folder (no absolute path, no `..`)."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
        raise IntegrityError(f"the archive names a path outside its folder: {name!r}")
    return name
