"""Serving predictions inside the API process: the model cache and the dynamic batcher."""

from app.inference.batcher import (
    Batcher,
    BatcherClosed,
    BatchObserver,
    QueueFull,
    Servable,
    Timing,
)
from app.inference.cache import CacheKey, LoadedModel, ModelCache, ModelLoadError

__all__ = [
    "BatchObserver",
    "Batcher",
    "BatcherClosed",
    "CacheKey",
    "LoadedModel",
    "ModelCache",
    "ModelLoadError",
    "QueueFull",
    "Servable",
    "Timing",
]
