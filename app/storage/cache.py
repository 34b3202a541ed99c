"""A process's local copy of published store directories (datasets, model versions).

The cache may be deleted at any moment, whole or a file at a time (a tmp cleaner): a
directory counts as cached only while its `.published` listing (fetch_dir writes it last,
inside a rename) and every file it lists, at its listed size, are there; anything less is
fetched again. Concurrent first uses of one directory, by threads of this
process or by other processes sharing the cache, wait on a single download.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.storage.errors import StoreMissing
from app.storage.locks import host_lock
from app.storage.store import PUBLISHED, Store


class StoreCache:
    def __init__(self, store: Store, root: Path) -> None:
        self.store, self.root = store, root
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def directory(self, prefix: str) -> Path:
        """A local directory holding the published directory `prefix` (StoreMissing if absent).

        On a local store the published directory is used in place: it is already on this disk.
        """
        self.store.uri(prefix)  # ValueError for a key that is not one (a "..", a leading "/")
        if self.store.local:
            if self.store.published(prefix) is None:
                raise StoreMissing(f"{prefix} is not published")
            return self.store.local_path(prefix)
        target = self.path(prefix)
        if _complete(target):
            return target
        with self._one_download(prefix):
            if not _complete(target):  # else another thread or process fetched it meanwhile
                self.store.fetch_dir(prefix, target)
        return target

    def path(self, prefix: str) -> Path:
        """Where the cached copy of `prefix` is (whether or not it is there)."""
        return self.root / "store" / prefix

    def forget(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    @contextmanager
    def _one_download(self, prefix: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(prefix, threading.Lock())
        name = hashlib.sha256(prefix.encode()).hexdigest()[:32]
        with lock, host_lock(self.root / "locks" / f"{name}.lock"):
            yield


def _complete(target: Path) -> bool:
    """Whether a fetched directory is all there: its listing and every file, at its size."""
    try:
        files: dict[str, int] = json.loads((target / PUBLISHED).read_bytes())["files"]
        return all((target / rel).stat().st_size == size for rel, size in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False
