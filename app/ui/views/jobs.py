"""Job pages: the list's rows, the job page's first state, and the new-job form."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from app.datasets.schemas import DatasetRead
from app.jobs.schemas import JobCreate, JobRead
from app.jobs.states import TERMINAL
from ml.training.hparams import FIELDS, Choice

STATUSES = ("queued", "running", "cancelling", "succeeded", "failed", "cancelled")
HEADLINES = (("val_macro_f1", "macro-F1"), ("val_accuracy", "accuracy"), ("val_rmse", "RMSE"))

# The form's hyperparameters: shown first, then the rest under "More"; each says what it does.
MAIN = ("epochs", "batch_size", "learning_rate")
HELP = {
    "epochs": "Passes over the training data when fine-tuning.",
    "batch_size": "Examples per optimizer step.",
    "learning_rate": "The backbone's learning rate; the new head gets a larger one.",
    "warmup_ratio": "Share of the steps spent warming the learning rate up.",
    "weight_decay": "AdamW's weight decay.",
    "patience": "Epochs without a better validation score before stopping early.",
    "max_length": "Tokens read from each text.",
    "image_size": "Pixels per side when fine-tuning.",
    "probe_image_size": "Pixels per side for the linear probe's features.",
    "label_smoothing": "Classification: softens the targets.",
    "freeze_batchnorm": "Keep BatchNorm statistics fixed while fine-tuning.",
    "loss": "Regression: squared error (mse) or Huber's, robust to a few wrong targets.",
    "time_budget_seconds": "auto: the most seconds fine-tuning may take after the probe.",
}
MODALITY = {
    "max_length": "text",
    "image_size": "image",
    "probe_image_size": "image",
    "freeze_batchnorm": "image",
}
_INT = re.compile(r"[+-]?\d{1,12}")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def headline(metrics: Mapping[str, Any]) -> tuple[str, float] | None:
    for key, label in HEADLINES:
        value = metrics.get(key)
        if isinstance(value, int | float):
            return label, float(value)
    return None


def progress_share(job: JobRead) -> float | None:
    p = job.progress
    if job.status == "succeeded":
        return 1.0
    if p.total_steps:
        return max(0.0, min(1.0, p.step / p.total_steps))
    return None


def row(job: JobRead) -> dict[str, Any]:
    return {"job": job, "headline": headline(job.metrics), "share": progress_share(job)}


def page(job: JobRead, dataset: DatasetRead | None) -> dict[str, Any]:
    return {
        "job": job,
        "dataset": dataset,
        "terminal": job.status in TERMINAL,
        "headline": headline(job.metrics),
        "share": progress_share(job),
        "hyperparameters": sorted(job.hyperparameters.items()),
    }


@dataclass(frozen=True)
class HyperField:
    name: str
    kind: str  # "int" | "float" | "bool" | "choice"
    range: str
    help: str
    modality: str  # "image", "text" or "" (every backbone)
    options: tuple[str, ...] = ()


def hyper_fields() -> list[HyperField]:
    fields = []
    for name, rule in FIELDS.items():
        if isinstance(rule, Choice):
            kind, span, options = "choice", " or ".join(rule.options), rule.options
        else:
            kind = rule.kind.__name__
            options = ()
            span = "true or false" if kind == "bool" else f"{rule.low:g} to {rule.high:g}"
        fields.append(HyperField(name, kind, span, HELP.get(name, ""), MODALITY.get(name, ""),
                                 options))  # fmt: skip
    return fields


def typed(raw: str) -> Any:
    """A form's text as the JSON value a client would send: 12, 0.001, true, or the text."""
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def request_of(form: Mapping[str, str]) -> tuple[JobCreate | None, list[dict[str, str]]]:
    """The job a submitted form asks for, or the problems with it, named by field."""
    hp = {}
    for name in FIELDS:
        raw = form.get(f"hp_{name}", "").strip()
        if raw and raw.lower() != "auto":
            hp[name] = typed(raw)
    body: dict[str, Any] = {
        "dataset_id": form.get("dataset_id", ""),
        "backbone": form.get("backbone", ""),
        "model_name": form.get("model_name", "").strip(),
        "method": form.get("method", "auto"),
        "hyperparameters": hp,
    }
    for name in ("validation_split", "seed"):
        raw = form.get(name, "").strip()
        if raw:
            body[name] = typed(raw)
    try:
        return JobCreate.model_validate(body), []
    except ValidationError as exc:
        return None, [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]


def suggested_name(dataset: DatasetRead | None) -> str:
    if dataset is None:
        return ""
    stem = dataset.name.rsplit(".", 1)[0]
    name = re.sub(r"[^a-zA-Z0-9._-]+", "-", stem).strip("-._")[:60]
    return name or "model"


def form(
    datasets: Sequence[DatasetRead],
    backbones: Sequence[dict[str, Any]],
    values: Mapping[str, str],
    errors: Sequence[dict[str, str]] = (),
    detail: str | None = None,
) -> dict[str, Any]:
    ready = [d for d in datasets if d.status == "ready"]
    chosen = next(
        (d for d in ready if d.id == values.get("dataset_id")), ready[0] if ready else None
    )
    filled = dict(values)
    filled.setdefault("model_name", suggested_name(chosen))
    filled.setdefault("method", "auto")
    fields = hyper_fields()
    return {
        "datasets": ready,
        "chosen": chosen,
        "backbones": backbones,
        "values": filled,
        "errors": {e["field"]: e["message"] for e in errors},
        "error_list": list(errors),
        "detail": detail,
        "main_fields": [f for f in fields if f.name in MAIN],
        "more_fields": [f for f in fields if f.name not in MAIN],
    }
