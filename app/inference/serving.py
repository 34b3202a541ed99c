"""The API process's serving state: one model cache, batchers wired to Prometheus."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings
from app.inference.batcher import Batcher
from app.inference.cache import LoadedModel, ModelCache
from app.ops.metrics import ApiMetrics


@dataclass(frozen=True)
class ModelKey:
    """Cache key: the version id; the artifact path and name ride along for loading/metrics."""

    version_id: str
    path: Path = field(compare=False)
    label: str = field(compare=False, default="")


class _Observer:
    def __init__(self, metrics: ApiMetrics, label: str) -> None:
        self.metrics, self.label = metrics, label

    def batch(self, size: int, queue_depth: int, inference_ms: float) -> None:
        self.metrics.batch_size.labels(self.label).observe(size)
        self.metrics.queue_depth.labels(self.label).observe(queue_depth)
        self.metrics.inference_seconds.labels(self.label).observe(inference_ms / 1000)


def build_model_cache(settings: Settings, metrics: ApiMetrics) -> ModelCache:
    # One thread runs forward passes (each already uses every core); loads get their own.
    forward_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hone-forward")
    load_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hone-load")

    def load(key: ModelKey) -> LoadedModel:
        from ml.inference.predictor import load_predictor

        predictor = load_predictor(key.path, max_pixels=settings.max_image_pixels)
        batcher_factory = lambda: Batcher(  # noqa: E731
            predictor,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            executor=forward_pool,
            observer=_Observer(metrics, key.label),
        )
        return LoadedModel.create(predictor, batcher_factory)

    return ModelCache(load, memory_budget_bytes=settings.model_cache_bytes, executor=load_pool)
