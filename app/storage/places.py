"""Storage: every durable thing in the store, and this process's local disk beside it.

The store (a directory or an S3-compatible bucket, HONE_STORAGE_URL) is the source of
truth. Local disk (HONE_CACHE_DIR) holds only what can be rebuilt from the store or thrown
away: downloaded datasets and model versions, the engine's caches (decoded images, tokens,
frozen features), a job's work directory and an upload while it is received or processed.
The engine (ml/) keeps its caches in the top of the cache directory (backbones/, images/,
tokens/, features/); this class uses store/, built/, work/, scratch/ and locks/ beside them.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from app.config import Settings
from app.storage import layout
from app.storage.cache import StoreCache
from app.storage.errors import StorageUnavailable, StoreMissing
from app.storage.store import Store

log = logging.getLogger("hone.storage")


class Storage:
    def __init__(self, store: Store, cache_dir: Path) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self._cache = StoreCache(store, cache_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        store = Store(settings.store_url, endpoint_url=settings.s3_endpoint_url)
        return cls(store, settings.local_cache_dir)

    def warm_up(self) -> None:
        """Open the store's connection now (one cheap lookup), so the first request that
        needs the store does not also pay for building the client and its first connection
        (bench/RESULTS.md, "Storage: S3 ÷ local"). An unreachable store is only logged:
        /readyz reports it, and requests that need it answer 503."""
        try:
            self.store.exists(".warm-up")
        except StorageUnavailable:
            log.warning("the store is unreachable at start-up", exc_info=True)

    def discard(self, delete: Callable[[str], None], what: str) -> None:
        """Run a delete whose row is already gone: an unreachable store leaves the objects
        behind (logged) rather than failing the request that removed the row."""
        try:
            delete(what)
        except StorageUnavailable:
            log.warning("store unreachable; left behind", extra={"key": what}, exc_info=True)

    # ---- local disk --------------------------------------------------------------------

    def work_dir(self, job_id: str) -> Path:
        """A job attempt's scratch on this host (its durable checkpoints are in the store)."""
        return self.cache_dir / "work" / job_id

    def scratch(self) -> Path:
        """A new private directory for one upload's receiving or processing; the caller
        removes it."""
        folder = self.cache_dir / "scratch" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    # ---- uploads -----------------------------------------------------------------------

    def save_upload(self, local: Path, dataset_id: str) -> None:
        self.store.put_file(local, layout.upload(dataset_id))

    def fetch_upload(self, dataset_id: str, local: Path) -> None:
        self.store.get_file(layout.upload(dataset_id), local)

    def drop_upload(self, dataset_id: str) -> None:
        self.store.delete(layout.upload(dataset_id))

    def upload_ids(self) -> list[str]:
        """The datasets whose uploads are in the store."""
        return [layout.upload_id(key) for key in self.store.list(layout.UPLOADS)]

    # ---- datasets ----------------------------------------------------------------------

    def local_datasets(self) -> Path:
        """Where ingestion builds datasets on this host before publishing them (apart from
        the cache of published ones, so a build is never mistaken for a download)."""
        return self.cache_dir / "built" / "datasets"

    def publish_dataset(self, local: Path) -> None:
        """Publish a dataset directory built by ingestion (named by its sha256), then drop
        the built copy: readers take it from the store (or their cache of it)."""
        key = layout.dataset(local.name)
        if self.store.published(key) is None:  # content-addressed: already there is done
            self.store.publish_dir(local, key)
        shutil.rmtree(local, ignore_errors=True)

    def dataset_dir(self, sha256: str) -> Path:
        """The dataset on local disk (fetched from the store if needed); StoreMissing if gone."""
        return self._cache.directory(layout.dataset(sha256))

    def delete_dataset(self, sha256: str) -> None:
        self.store.delete(layout.dataset(sha256))
        self._cache.forget(layout.dataset(sha256))

    # ---- model versions ----------------------------------------------------------------

    def version_uri(self, project_id: str, name: str, version: int) -> str:
        return self.store.uri(layout.model_version(project_id, name, version))

    def version_published(self, uri: str) -> bool:
        return self.store.published(self.store.key_of(uri)) is not None

    def publish_version(self, local: Path, uri: str) -> None:
        self.store.publish_dir(local, self.store.key_of(uri))

    def version_dir(self, uri: str) -> Path:
        """A version's artifact on local disk, downloaded once per host; StoreMissing if gone."""
        return self._cache.directory(self.store.key_of(uri))

    def delete_version(self, uri: str) -> None:
        key = self.store.key_of(uri)
        self.store.delete(key)
        self._cache.forget(key)

    # ---- job checkpoints ---------------------------------------------------------------

    def save_checkpoint(self, job_id: str, local: Path) -> None:
        """Publish the checkpoint directory `local` as the job's latest, then drop the one
        before: the pointer names a complete checkpoint at every moment."""
        previous = self._checkpoint_number(job_id)
        number = 0 if previous is None else previous + 1
        self.store.publish_dir(local, layout.checkpoint(job_id, number))
        pointer = json.dumps({"number": number}).encode()
        self.store.put_bytes(layout.checkpoint_pointer(job_id), pointer)
        if previous is not None:  # the new one is saved: losing the old one is only garbage
            self.discard(self.store.delete, layout.checkpoint(job_id, previous))

    def restore_checkpoint(self, job_id: str, local: Path) -> bool:
        """Make `local` hold the job's latest checkpoint from the store (False: it has none,
        and `local` is removed so no stale copy on this host is resumed)."""
        shutil.rmtree(local, ignore_errors=True)
        number = self._checkpoint_number(job_id)
        if number is None:
            return False
        try:
            self.store.fetch_dir(layout.checkpoint(job_id, number), local)
        except StoreMissing:
            return False
        return True

    def drop_job(self, job_id: str) -> None:
        """A finished job's checkpoints and work directory."""
        self.store.delete(layout.job(job_id))
        shutil.rmtree(self.work_dir(job_id), ignore_errors=True)

    def _checkpoint_number(self, job_id: str) -> int | None:
        try:
            raw = self.store.get_bytes(layout.checkpoint_pointer(job_id))
        except StoreMissing:
            return None
        try:
            number = json.loads(raw)["number"]
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable checkpoint pointer; starting afresh", extra={"job_id": job_id})
            return None
        return number if isinstance(number, int) else None
