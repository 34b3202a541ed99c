"""The API process's serving state: one model cache whose batchers feed Prometheus."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import Settings
from app.inference.cache import ModelCache
from app.ops.metrics import ApiMetrics


@dataclass(frozen=True)
class ModelKey:
    """Cache key: the version id. The artifact path and a metrics label ride along."""

    version_id: str
    path: Path = field(compare=False, default=Path())
    label: str = field(compare=False, default="")


class _Observer:
    def __init__(self, metrics: ApiMetrics, label: str) -> None:
        self.metrics, self.label = metrics, label

    def batch(self, size: int, queue_depth: int, inference_ms: float) -> None:
        self.metrics.batch_size.labels(self.label).observe(size)
        self.metrics.queue_depth.labels(self.label).observe(queue_depth)
        self.metrics.inference_seconds.labels(self.label).observe(inference_ms / 1000)


def build_model_cache(settings: Settings, metrics: ApiMetrics) -> ModelCache:
    def load(key: Any) -> Any:
        from ml.inference.predictor import load_predictor

        return load_predictor(key.path)

    return ModelCache(
        load,
        memory_budget_bytes=settings.model_cache_bytes,
        max_batch_size=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_queue=settings.max_queue,
        observer=lambda key: _Observer(metrics, getattr(key, "label", str(key))),
    )
