"""The API's objects as pydantic models, field for field as /openapi.json declares them.

Every model allows extra fields, so a newer server's additions reach the caller (as
attributes) instead of failing validation; tests/client/test_sdk_schema.py holds these
declarations to the live schema so the two cannot drift. Nested objects whose shape depends
on the task or the job (metrics, progress, audits, manifests) stay plain dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class HoneObject(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Dataset(HoneObject):
    """An uploaded dataset and its data-quality audit (`report`)."""

    id: str
    object: str = "dataset"
    name: str
    task: str
    multilabel: bool = False
    status: str  # processing | ready | failed
    created_at: datetime
    finished_at: datetime | None = None
    num_examples: int = 0
    labels: list[str] = []
    label_counts: dict[str, int] = {}
    targets: list[str] | None = None
    sha256: str | None = None
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # {"code", "message"} when failed


class Backbone(HoneObject):
    """A network a job can fine-tune (`id` is what `jobs.create(backbone=...)` takes)."""

    id: str
    object: str = "backbone"
    modality: str  # image | text
    library: str  # timm | transformers
    num_params: int | None = None
    input_size: int | None = None  # image backbones
    max_length: int | None = None  # text backbones
    license: str | None = None
    available: bool = True
    source: str | None = None
    description: str | None = None


class VersionRef(HoneObject):
    """A model version by name and number."""

    name: str
    version: int


class Job(HoneObject):
    """A fine-tuning job: its status, progress and latest metrics, its model version once
    it succeeded."""

    id: str
    object: str = "fine_tuning.job"
    status: str  # queued | running | cancelling | succeeded | failed | cancelled
    dataset_id: str
    validation_dataset_id: str | None = None
    backbone: str
    model_name: str
    method: str
    method_chosen: str | None = None
    method_reason: str | None = None
    hyperparameters: dict[str, Any] = {}
    seed: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] = {}  # epoch, epochs, step, total_steps, eta_seconds
    metrics: dict[str, Any] = {}
    model_version: VersionRef | None = None
    error: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """True once the job is succeeded, failed or cancelled."""
        return self.status in TERMINAL_JOB_STATUSES


class JobPlan(HoneObject):
    """What a job would run (a dry run): the resolved plan and its estimated time."""

    object: str = "job.plan"
    dry_run: bool = True
    dataset_id: str
    validation_dataset_id: str | None = None
    backbone: str
    model_name: str
    method: str
    seed: int = 0
    num_examples: int
    num_validation_examples: int | None = None
    plan: dict[str, Any]  # method, hyperparameters, candidates, estimated_seconds, ...


class Event(HoneObject):
    """One entry of a job's log: a message, or the metrics of an epoch (`type="metrics"`)."""

    id: int
    object: str = "fine_tuning.job.event"
    created_at: datetime
    level: str  # info | warn | error
    type: str  # message | metrics
    message: str
    data: dict[str, Any] | None = None


class Model(HoneObject):
    """A registered model: its newest ready version and its aliases."""

    name: str
    object: str = "model"
    task: str
    latest_version: int | None = None
    aliases: dict[str, int] = {}
    created_at: datetime


class VersionSummary(HoneObject):
    """A version as `models.get` lists it (`models.version` has everything)."""

    version: int
    object: str = "model.version"
    status: str
    backbone: str
    job_id: str | None = None
    dataset_id: str | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    rmse: float | None = None
    r2: float | None = None
    method_chosen: str | None = None
    runtime: str | None = None
    created_at: datetime


class ModelDetail(Model):
    versions: list[VersionSummary] = []


class ModelVersion(HoneObject):
    """One trained version: labels, validation metrics (per label, confusion matrix) and the
    manifest that says how it was made."""

    name: str
    version: int
    object: str = "model.version"
    status: str  # registering | ready | failed | ...
    task: str
    labels: list[str] = []
    backbone: str
    job_id: str | None = None
    dataset_id: str | None = None
    metrics: dict[str, Any] = {}
    manifest: dict[str, Any] = {}
    method_chosen: str | None = None
    method_reason: str | None = None
    runtime: str | None = None
    created_at: datetime


class LabelScore(HoneObject):
    label: str
    score: float


class Prediction(HoneObject):
    """One input's answer. Classifiers: `label`, `score` and the top-k `scores`; multi-label
    classifiers: `labels` and `scores`; regression: `value`, `interval`, `coverage` (and
    `targets` when there are several)."""

    label: str | None = None
    score: float | None = None
    scores: list[LabelScore] | None = None
    labels: list[str] | None = None
    value: float | list[float] | None = None
    interval: list[float] | list[list[float]] | None = None
    coverage: float | None = None
    targets: list[str] | None = None


class PredictResponse(HoneObject):
    model: VersionRef
    predictions: list[Prediction]
