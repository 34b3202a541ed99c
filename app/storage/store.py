"""The object store, implemented once on fsspec: a local directory (the embedded default) or
any S3-compatible store (s3fs), chosen by URL.

Keys are relative, "/"-separated names (layout.py builds them). A single object is written
whole or not at all: S3 makes a PUT atomic, and on a local directory the bytes go to a
temporary name first and are renamed. A directory cannot be written atomically on S3, so
`publish_dir` writes every file and then, last, a `.published` listing of them; readers
treat a directory as present only once its listing is there, and `fetch_dir` checks every
file against it. A partly written directory is therefore never read, on S3 as on disk.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import fsspec

from app.storage.errors import StorageUnavailable, StoreMissing

PUBLISHED = ".published"
S3_POOL = 32  # connections per process to an S3 store
# An S3 store that cannot be reached, or that accepts connections but never answers, fails a
# call in about ten seconds (2 attempts x 5 s), so requests answer 503 promptly and workers go
# back to their own retry loop instead of blocking. read_timeout bounds each wait for the
# server's next bytes, not a whole transfer, so large objects are unaffected. botocore does the
# one retry (it knows throttling, 5xx and connection errors); s3fs's own loop, which by default
# repeats every timeout five more times on top, is set to a single attempt (S3FS_ATTEMPTS).
S3_CONFIG = {
    "connect_timeout": 3,
    "read_timeout": 5,
    "retries": {"mode": "standard", "total_max_attempts": 2},
    "max_pool_connections": S3_POOL,
}
S3FS_ATTEMPTS = 1
# The files of one publish_dir or fetch_dir in flight at once: fewer than the pool holds, so no
# request (nor its retry) queues for a connection behind the same call's others; a store that
# stops answering then fails the call in one round of timeouts, not one per pool-full of files.
S3_BATCH = 16
# aiohttp puts no timeout at all on sending a request body: a store that stops reading (its
# socket buffers full) would hold a large write forever. Every write is therefore given a
# deadline sized to what it sends, generous for any working store.
WRITE_DEADLINE_S = 30.0
WRITE_MIN_BYTES_PER_S = 1 << 20
# A local write in progress (put_file, put_bytes): never a key of its own.
_IN_PROGRESS = re.compile(r"\.tmp-[0-9a-f]{32}$")


def _transient_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:
        pass
    try:
        from aiohttp import ClientError as HTTPClientError

        errors.append(HTTPClientError)
    except ImportError:
        pass
    return tuple(errors)


_TRANSIENT = _transient_errors()


@contextmanager
def _guarded(what: str) -> Iterator[None]:
    """Missing objects become StoreMissing; anything else the store raises, StorageUnavailable."""
    try:
        yield
    except StoreMissing:
        raise
    except FileNotFoundError as exc:
        raise StoreMissing(what) from exc
    except _TRANSIENT as exc:
        detail = str(exc) or "no answer in time"
        raise StorageUnavailable(f"{what}: {type(exc).__name__}: {detail}") from exc


def _write_deadline(size: int) -> float:
    return WRITE_DEADLINE_S + size / WRITE_MIN_BYTES_PER_S


def _s3_session() -> Any:
    """An aiobotocore session whose S3 requests never send `Expect: 100-continue`.

    botocore asks for it on every PUT with a file-like body, and aiohttp then waits for the
    "100 Continue" with no timeout at all (read_timeout starts only once the body is sent):
    a store that accepts the connection but never answers would hang every write forever.
    The header is not signed (botocore leaves it out of SigV4), so dropping it just before
    sending is safe; the only loss is that a refused write sends its body first.
    """
    from aiobotocore.session import AioSession

    session = AioSession()
    session.register("before-send.s3", _drop_expect_header)
    return session


def _drop_expect_header(request: Any, **_: Any) -> None:
    request.headers.pop("Expect", None)


class Store:
    def __init__(self, url: str, *, endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        self.local = protocol in ("file", "local")
        self._s3 = protocol == "s3"
        self._options: dict[str, Any] = {}
        if protocol == "s3":
            # Listings are never cached: another host may have written since.
            self._options = {"use_listings_cache": False, "config_kwargs": S3_CONFIG}
            if endpoint_url:
                self._options["endpoint_url"] = endpoint_url
        self._fs, root = self._filesystem_and_root()
        self._pid = os.getpid()
        self.root = root.rstrip("/")
        self.scheme = "file" if self.local else protocol

    def _filesystem_and_root(self) -> tuple[Any, str]:
        # One filesystem per process: s3fs clients hold sockets and an event loop that a
        # forked worker child must not share with its parent.
        options = {**self._options, "session": _s3_session()} if self._s3 else self._options
        fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True, **options)
        if self._s3:
            fs.retries = S3FS_ATTEMPTS  # an attribute: s3fs takes no such constructor argument
        return fs, root

    @property
    def fs(self) -> Any:
        if self._pid != os.getpid():
            self._fs, self._pid = self._filesystem_and_root()[0], os.getpid()
        return self._fs

    # ---- names -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"not a store key: {key!r}")
        return f"{self.root}/{key}"

    def uri(self, key: str) -> str:
        """The key as a URI (file:///… or s3://…), as recorded in the registry."""
        return f"{self.scheme}://{self._path(key)}"

    def key_of(self, uri: str) -> str:
        """The key a URI from `uri` names; ValueError for one outside this store."""
        prefix = f"{self.scheme}://{self.root}/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri!r} is not in the store at {self.url!r}")
        key = uri.removeprefix(prefix)
        self._path(key)  # refuses "", "/…" and ".." that would lead out of the store
        return key

    def local_path(self, key: str) -> Path:
        """The file a key is on a local store (readers on the same host use it in place)."""
        if not self.local:
            raise ValueError("the store is not a local directory")
        return Path(self._path(key))

    # ---- objects -----------------------------------------------------------------------

    def put_file(self, local: Path, key: str) -> None:
        path = self._path(key)
        with _guarded(f"writing {key}"):
            if self.local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp = f"{path}.tmp-{uuid.uuid4().hex}"
                try:
                    shutil.copyfile(local, tmp)
                    os.replace(tmp, path)
                finally:
                    Path(tmp).unlink(missing_ok=True)
            else:
                deadline = _write_deadline(local.stat().st_size)
                self.fs.put_file(str(local), path, timeout=deadline)

    def put_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        with _guarded(f"writing {key}"):
            if self.local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(f"{path}.tmp-{uuid.uuid4().hex}")
                try:
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            else:
                self.fs.pipe_file(path, data, timeout=_write_deadline(len(data)))

    def get_bytes(self, key: str) -> bytes:
        with _guarded(f"reading {key}"):
            data: bytes = self.fs.cat_file(self._path(key))
            return data

    def get_file(self, key: str, local: Path) -> None:
        """Download to `local`, which appears whole or not at all."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp-{uuid.uuid4().hex}")
        try:
            with _guarded(f"reading {key}"):
                self.fs.get_file(self._path(key), str(tmp))
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """A file object for reading (or writing, for large streamed writes on S3)."""
        with _guarded(f"opening {key}"):
            handle: IO[bytes] = self.fs.open(self._path(key), mode)
            return handle

    def exists(self, key: str) -> bool:
        with _guarded(f"looking up {key}"):
            return bool(self.fs.exists(self._path(key)))

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix`, sorted ([] when there are none), `.published` listings
        included and a local write still in progress (its temporary name) left out."""
        base = self._path(prefix).rstrip("/") + "/"
        with _guarded(f"listing {prefix}"):
            try:
                found = self.fs.find(base)
            except FileNotFoundError:
                return []
        root = self.root + "/"
        # A local find of a file's own name returns that file: it is not under itself.
        keys = (str(p) for p in found if str(p).startswith(base))
        return sorted(p.removeprefix(root) for p in keys if not _IN_PROGRESS.search(p))

    def delete(self, prefix: str) -> None:
        """Remove a key or everything under a prefix; nothing there is not an error."""
        path = self._path(prefix)
        with _guarded(f"deleting {prefix}"):
            if self.local:
                target = Path(path)
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
                return
            with suppress(FileNotFoundError):
                self.fs.rm(path, recursive=True)

    # ---- published directories ---------------------------------------------------------

    def publish_dir(self, local: Path, prefix: str) -> dict[str, int]:
        """Write every file under `local` to `prefix`, then the listing that makes it visible.

        Publishing again (a retry) overwrites the same bytes; the listing comes last each time.
        """
        files = {
            p.relative_to(local).as_posix(): p.stat().st_size
            for p in sorted(local.rglob("*"))
            if p.is_file() and p.name != PUBLISHED
        }
        if self.local:
            for rel in files:
                self.put_file(local / rel, f"{prefix}/{rel}")
        elif files:
            with _guarded(f"writing {prefix}"):
                self.fs.put(
                    [str(local / rel) for rel in files],
                    [self._path(f"{prefix}/{rel}") for rel in files],
                    batch_size=S3_BATCH,
                    timeout=_write_deadline(sum(files.values())),
                )
        self.put_bytes(f"{prefix}/{PUBLISHED}", json.dumps({"files": files}).encode())
        return files

    def adopt_dir(self, prefix: str) -> bool:
        """Publish a directory already in a local store whole (written before directories had
        listings, by an earlier Hone); False when there is nothing to adopt or it is listed."""
        local = self.local_path(prefix)
        if not local.is_dir() or (local / PUBLISHED).exists():
            return False
        files = {
            p.relative_to(local).as_posix(): p.stat().st_size
            for p in sorted(local.rglob("*"))
            if p.is_file() and ".tmp-" not in p.name
        }
        if not files:
            return False
        self.put_bytes(f"{prefix}/{PUBLISHED}", json.dumps({"files": files}).encode())
        return True

    def published(self, prefix: str) -> dict[str, int] | None:
        """The files of a published directory (name → size), or None when it is not published."""
        try:
            listing = json.loads(self.get_bytes(f"{prefix}/{PUBLISHED}"))
        except StoreMissing:
            return None
        files: dict[str, int] = listing["files"]
        return files

    def fetch_dir(self, prefix: str, local: Path) -> None:
        """Download a published directory to `local` (replaced whole; StoreMissing if absent)."""
        files = self.published(prefix)
        if files is None:
            raise StoreMissing(f"{prefix} is not published")
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.tmp-{uuid.uuid4().hex}")
        try:
            tmp.mkdir()
            for rel in files:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            with _guarded(f"reading {prefix}"):
                if files:
                    self.fs.get(
                        [self._path(f"{prefix}/{rel}") for rel in files],
                        [str(tmp / rel) for rel in files],
                        **({"batch_size": S3_BATCH} if self._s3 else {}),
                    )
            for rel, size in files.items():
                if (tmp / rel).stat().st_size != size:
                    raise StorageUnavailable(f"{prefix}/{rel} changed while it was read")
            (tmp / PUBLISHED).write_text(json.dumps({"files": files}))
            if local.is_dir() and not local.is_symlink():
                shutil.rmtree(local)
            elif local.exists() or local.is_symlink():
                local.unlink()
            os.replace(tmp, local)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
