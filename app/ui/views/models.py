"""Model pages: the versions of a model, and a version's metrics, charts and manifest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.registry.schemas import ModelDetail, VersionRead
from app.ui import charts
from ml.tasks import UnknownTask, get_task

MAX_HEATMAP_LABELS = 60
# The version's headline numbers, in the order a card row shows them.
CLASSIFICATION_CARDS = (
    ("accuracy", "Accuracy", "pct"),
    ("macro_f1", "Macro-F1", "num"),
    ("val_loss", "Validation loss", "num"),
)
REGRESSION_CARDS = (
    ("rmse", "RMSE", "num"),
    ("mae", "MAE", "num"),
    ("r2", "R²", "num"),
    ("spearman", "Spearman", "num"),
)


def _modality(task: str) -> str:
    try:
        return get_task(task).modality
    except UnknownTask:
        return "image" if task.startswith("image") else "text"


def _family(task: str) -> str:
    try:
        return get_task(task).family
    except UnknownTask:
        return "regression" if task.endswith("regression") else "classification"


def per_label(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = metrics.get("per_label") or {}
    return [
        {"label": label, **{k: values.get(k) for k in ("precision", "recall", "f1", "support")}}
        for label, values in rows.items()
        if isinstance(values, Mapping)
    ]


def _reliability(metrics: Mapping[str, Any]) -> charts.Reliability | None:
    diagram = metrics.get("reliability") or {}
    before, after = diagram.get("before"), diagram.get("after")
    if not before:
        return None
    calibration = metrics.get("calibration") or {}
    shown = [("before scaling", "before", before)]
    if after:
        t = calibration.get("temperature", 1.0)
        shown.append((f"after (T = {t:.2f})", "after", after))
    return charts.reliability(shown)


def _manifest(manifest: Mapping[str, Any]) -> list[tuple[str, Any]]:
    backbone = manifest.get("backbone") or {}
    runtime = manifest.get("runtime") or {}
    facts: list[tuple[str, Any]] = [
        ("Dataset", manifest.get("dataset_id")),
        ("Dataset SHA-256", manifest.get("dataset_sha256")),
        ("Validation", manifest.get("validation_dataset_id") or manifest.get("validation_split")),
        ("Backbone", f"{backbone.get('id', '')} ({backbone.get('library', '')} "
                     f"{backbone.get('arch', '')})".strip()),
        ("Backbone weights SHA-256", backbone.get("weights_sha256")),
        ("Method", manifest.get("method")),
        ("Why", manifest.get("method_reason")),
        ("Seed", manifest.get("seed")),
        ("Serving runtime", runtime.get("chosen") if isinstance(runtime, Mapping) else runtime),
    ]  # fmt: skip
    return [(name, value) for name, value in facts if value not in (None, "", "()")]


def version_page(model: ModelDetail, version: VersionRead) -> dict[str, Any]:
    metrics = version.metrics
    family = _family(version.task)
    labels = version.labels
    matrix = metrics.get("confusion_matrix")
    heatmap = None
    if matrix and len(labels) == len(matrix) <= MAX_HEATMAP_LABELS:
        heatmap = charts.heatmap(labels, matrix)
    cards = REGRESSION_CARDS if family == "regression" else CLASSIFICATION_CARDS
    scatter = metrics.get("predicted_vs_true")
    manifest = version.manifest
    return {
        "model": model,
        "version": version,
        "family": family,
        "modality": _modality(version.task),
        "aliases": sorted(a for a, v in model.aliases.items() if v == version.version),
        "cards": [(label, metrics.get(key), fmt) for key, label, fmt in cards if key in metrics],
        "per_label": per_label(metrics),
        "heatmap": heatmap,
        "too_many_labels": bool(matrix) and heatmap is None,
        "calibration": metrics.get("calibration") or {},
        "reliability": _reliability(metrics),
        "candidates": metrics.get("candidates") or [],
        "intervals": metrics.get("intervals"),
        "scatter": charts.scatter(scatter) if scatter else None,
        "counts": {k: metrics.get(k) for k in ("num_train", "num_val") if k in metrics},
        "facts": _manifest(manifest),
        "hyperparameters": sorted((manifest.get("hyperparameters") or {}).items()),
        "library_versions": sorted((manifest.get("versions") or {}).items()),
        "manifest_json": json.dumps(manifest, indent=2, sort_keys=True, default=str),
    }
