"""A lock held across every process of this host: an exclusive ``flock`` on a file beside
what it guards (the cache's downloads, the registry's archive builds)."""

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def host_lock(path: Path) -> Iterator[None]:
    """Hold `path`'s lock (the file and its folder are made when missing) until the block
    ends. Each call opens its own file, so threads of one process also wait on each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
