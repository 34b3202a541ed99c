"""The API process's serving state: one model cache whose batchers feed Prometheus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from app.config import Settings
from app.inference.cache import LoadedModel, ModelCache
from app.ops.metrics import ApiMetrics
from app.storage.places import Storage


@dataclass(frozen=True)
class ModelKey:
    """Cache key: the version id. The artifact's URI and a metrics label ride along."""

    version_id: str
    uri: str = field(compare=False, default="")
    label: str = field(compare=False, default="")


class _Observer:
    def __init__(self, metrics: ApiMetrics, label: str) -> None:
        self.metrics, self.label = metrics, label

    def batch(self, size: int, queue_depth: int, inference_ms: float) -> None:
        self.metrics.batch_size.labels(self.label).observe(size)
        self.metrics.queue_depth.labels(self.label).observe(queue_depth)
        self.metrics.inference_seconds.labels(self.label).observe(inference_ms / 1000)


def build_model_cache(settings: Settings, metrics: ApiMetrics, storage: Storage) -> ModelCache:
    def load(key: Any) -> Any:
        from ml.device import pick_device
        from ml.inference.predictor import load_predictor

        # A GPU asked for but missing, or the store unreachable, fails the load: 503 with the
        # reason. The artifact is downloaded to this host's cache once (app/storage/cache.py).
        return load_predictor(
            storage.version_dir(key.uri),
            device=str(pick_device(settings.serve_device)),
            max_pixels=settings.max_image_pixels,
        )

    return VersionCache(
        load,
        memory_budget_bytes=settings.model_cache_bytes,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        observer=lambda key: _Observer(metrics, getattr(key, "label", str(key))),
    )


class VersionCache(ModelCache):
    """The model cache keyed by version: `evict(version_id)` may come from any thread (the
    registry's synchronous endpoints run in a thread pool) and runs on the cache's loop."""

    _loop: asyncio.AbstractEventLoop | None = None

    async def get(self, key: Any) -> LoadedModel:
        self._loop = asyncio.get_running_loop()
        return await super().get(key)

    def evict(self, key: Any) -> None:
        key = key if isinstance(key, ModelKey) else ModelKey(str(key))
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop and not loop.is_closed():
            loop.call_soon_threadsafe(ModelCache.evict, self, key)
            return
        super().evict(key)
