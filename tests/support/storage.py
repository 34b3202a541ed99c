"""What a test backend holds in its store and its local cache, through the storage seam."""

from __future__ import annotations

from pathlib import Path

from app.storage.places import Storage
from tests.support.stack import Backend


def storage_of(backend: Backend) -> Storage:
    return Storage.from_settings(backend.settings())


def leftover_uploads(backend: Backend) -> list[str]:
    """Uploads still in the store, and upload scratch directories still on local disk."""
    storage = storage_of(backend)
    scratch = storage.cache_dir / "scratch"
    local = sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else []
    return storage.store.list("uploads") + local


def version_dir(backend: Backend, artifact_uri: str) -> Path:
    return storage_of(backend).version_dir(artifact_uri)
