"""A job's dry run: the plan a real create would hand the workers, with its estimated time,
from the same numbers the worker plans from (the datasets' sizes and the input statistics
ingest measured, kept in the dataset's audit report and, identically, in its manifest).

Nothing is written: no job row, no event, no idempotency record, no message to the broker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.jobs import service
from app.jobs.schemas import JobCreate, JobPlanRead, PlanRead
from app.models import Dataset, Project
from ml.backbones.spec import BackboneSpec
from ml.tasks import get_task
from ml.training.plan import InputStats, plan_job


def input_stats(dataset: Dataset) -> InputStats:
    """What ingest measured of the dataset's inputs; empty for a dataset stored before it did
    (the plan then takes the backbone's defaults, as the worker does for it)."""
    inputs = (dataset.report or {}).get("inputs")
    return InputStats.from_dict(inputs if isinstance(inputs, Mapping) else None)


def plan(
    session: Session,
    project: Project,
    body: JobCreate,
    *,
    catalog: Mapping[str, BackboneSpec],
    settings: Settings,
) -> JobPlanRead:
    checked = service.check(session, project, body, catalog=catalog, settings=settings)
    dataset, val = checked.dataset, checked.validation
    resolved = plan_job(
        method=body.method,
        hyperparameters=body.hyperparameters,
        backbone=checked.backbone,
        num_examples=dataset.num_examples,
        num_validation_examples=val.num_examples if val else None,
        validation_split=body.validation_split,
        stats=input_stats(dataset),
        device=settings.worker_device,
        task_defaults=get_task(dataset.task).hyperparameters,
    )
    public: dict[str, Any] = resolved.to_public()
    return JobPlanRead(
        dataset_id=dataset.id,
        validation_dataset_id=val.id if val else None,
        backbone=checked.backbone.id,
        model_name=body.model_name,
        method=body.method,
        seed=body.seed,
        num_examples=dataset.num_examples,
        num_validation_examples=val.num_examples if val else None,
        plan=PlanRead.model_validate(public),
    )
