"""Prometheus metrics of the API process.

Labels name nothing of any project: HTTP metrics carry the route template (`/v1/models/{name}`),
never a path, and prediction metrics are totals over every model. /metrics can be read by
whoever reaches it (or, with HONE_METRICS_TOKEN, whoever holds the token), and one project's
model names are not another's business.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

M = TypeVar("M", Counter, Histogram)


class Unlabelled(Generic[M]):
    """A metric whose callers may still name a model (`.labels(label)`): the name is dropped,
    so every model counts into the same series."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric

    def labels(self, *_names: str) -> M:
        return self.metric


class ApiMetrics:
    """One registry per app instance, so several apps in one process (tests) don't collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hone_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hone_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.predict_latency = Unlabelled(
            Histogram(
                "hone_predict_seconds",
                "Prediction request latency",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=self.registry,
            )
        )
        self.batch_size = Unlabelled(
            Histogram(
                "hone_predict_batch_size",
                "Inputs per formed inference batch",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128),
                registry=self.registry,
            )
        )
        self.queue_depth = Unlabelled(
            Histogram(
                "hone_predict_queue_depth",
                "Queued inputs when a batch is formed",
                buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                registry=self.registry,
            )
        )
        self.inference_seconds = Unlabelled(
            Histogram(
                "hone_predict_inference_seconds",
                "Forward pass time per batch",
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=self.registry,
            )
        )
        self.rejected = Unlabelled(
            Counter(
                "hone_predict_rejected_total",
                "Predictions refused with 429",
                registry=self.registry,
            )
        )
