"""What a job request must satisfy before anything is stored: a ready dataset of this
project, a known and loadable backbone of the dataset's modality, valid hyperparameters, and
a model name free for this task. Each failure is a problem with advice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session

from app.backbones.availability import unavailable_reason
from app.datasets import repository as datasets
from app.errors import Conflict, NotFound, Unprocessable
from app.jobs.schemas import JobCreate
from app.models import Dataset, Project
from app.registry import repository as registry
from ml.backbones.catalog import is_available
from ml.backbones.spec import BackboneSpec
from ml.tasks import get_task, tasks_for
from ml.training.hparams import validate_hyperparameters


def ready_dataset(session: Session, project: Project, dataset_id: str, field: str) -> Dataset:
    row = datasets.get(session, project.id, dataset_id)
    if row is None:
        raise NotFound(f"No dataset {dataset_id!r} in this project.", code="dataset_not_found")
    if row.status == "processing":
        raise Conflict(
            f"Dataset {dataset_id} is still being processed; start the job once it is ready.",
            code="dataset_not_ready",
        )
    if row.status != "ready":
        raise Unprocessable(
            f"Dataset {dataset_id} failed processing ({row.error_code}) and cannot be trained "
            "on; fix the upload and create a new dataset.",
            code="dataset_failed",
            errors=[{"field": field, "message": "dataset failed processing"}],
        )
    return row


def backbone(catalog: Mapping[str, BackboneSpec], backbone_id: str, cache: Path) -> BackboneSpec:
    spec = catalog.get(backbone_id)
    if spec is None:
        known = ", ".join(sorted(catalog))
        raise Unprocessable(
            f"Unknown backbone {backbone_id!r}; choose one of: {known} (GET /v1/backbones).",
            code="unknown_backbone",
            errors=[{"field": "backbone", "message": f"expected one of {known}"}],
            backbones=sorted(catalog),
        )
    if not is_available(spec, cache):
        raise Unprocessable(
            f"Backbone {backbone_id!r} is not available: {unavailable_reason(spec)}",
            code="backbone_unavailable",
            errors=[{"field": "backbone", "message": "weights not available"}],
        )
    return spec


def check_fit(spec: BackboneSpec, train: Dataset, val: Dataset | None) -> None:
    task = get_task(train.task)
    if task.modality != spec.modality:
        fits = ", ".join(t.name for t in tasks_for(spec.modality))
        raise Unprocessable(
            f"Backbone {spec.id!r} is a {spec.modality} model (it learns {fits}) and cannot "
            f"learn {train.task}; choose a {task.modality} backbone (GET /v1/backbones).",
            code="modality_mismatch",
            errors=[{"field": "backbone", "message": f"a {spec.modality} backbone"}],
        )
    if val is None:
        return
    if val.task != train.task or val.multilabel != train.multilabel:
        raise Unprocessable(
            "The validation dataset must have the training dataset's task and multilabel setting.",
            code="validation_dataset_mismatch",
            errors=[{"field": "validation_dataset_id", "message": "different kind of dataset"}],
        )
    unknown = sorted(set(val.labels) - set(train.labels))
    if unknown:
        raise Unprocessable(
            f"The validation dataset has labels the training dataset lacks: {unknown}.",
            code="validation_dataset_mismatch",
            errors=[{"field": "validation_dataset_id", "message": "unknown labels"}],
        )


def check_request(body: JobCreate) -> None:
    if body.validation_dataset_id and body.validation_split is not None:
        raise Unprocessable(
            "Give either validation_dataset_id or validation_split, not both.",
            errors=[{"field": "validation_split", "message": "not with validation_dataset_id"}],
        )
    errors = [
        {"field": f"hyperparameters.{name}", "message": message}
        for name, message in validate_hyperparameters(body.hyperparameters)
    ]
    if errors:
        raise Unprocessable(
            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            code="invalid_hyperparameters",
            errors=errors,
        )


def check_model_name(session: Session, project: Project, name: str, task: str) -> None:
    model = registry.get_model(session, project.id, name)
    if model is not None and model.task != task:
        raise Conflict(
            f"Model {name!r} already exists for {model.task}; this job trains {task}. "
            "Choose another model_name.",
            code="model_task_mismatch",
        )
