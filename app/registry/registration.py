"""Registering a trained model: the registry's side of a job's last step (run by the worker).

Two short transactions around publishing the artifact: `reserve_version` gets or creates the
model and allocates a version row in status "registering"; the artifact is published to the
store under the version's URI; `mark_ready` flips it to "ready". A retried job (its worker
died somewhere in between) finds its version by job id and carries on, so a job never makes
two versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.errors import Conflict
from app.models import ModelVersion, RegisteredModel
from app.registry import repository
from app.registry.states import FAILED, READY, REGISTERING


@dataclass(frozen=True)
class NewVersion:
    project_id: str
    name: str
    task: str
    job_id: str
    dataset_id: str
    backbone: str
    labels: list[str]
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    runtime: str


def model_for_write(session: Session, project_id: str, name: str, task: str) -> RegisteredModel:
    """The model a job registers into, created on first use; it must be of the job's task."""
    model = repository.insert_model(session, project_id, name, task)
    if model.task != task:
        raise Conflict(
            f"Model {name!r} already exists for {model.task}; a {task} job needs another "
            "model_name.",
            code="model_task_mismatch",
        )
    return model


def reserve_version(
    session: Session, new: NewVersion, artifact_uri: Callable[[int], str]
) -> ModelVersion:
    """This job's version row: the existing one (a retry) or a new one with the next number,
    whose artifact goes to `artifact_uri(number)` (the storage seam names it)."""
    existing = repository.version_for_job(session, new.job_id)
    if existing is not None:
        return existing
    model = model_for_write(session, new.project_id, new.name, new.task)
    number = repository.next_version(session, model.id)
    row = ModelVersion(
        model_id=model.id,
        version=number,
        status=REGISTERING,
        task=new.task,
        labels=new.labels,
        backbone=new.backbone,
        job_id=new.job_id,
        dataset_id=new.dataset_id,
        metrics=new.metrics,
        manifest=new.manifest,
        runtime=new.runtime,
        artifact_uri=artifact_uri(number),
    )
    session.add(row)
    session.flush()
    return row


def mark_ready(session: Session, version_id: str) -> ModelVersion | None:
    """None when the row is gone (deleted while registering is refused, so: never in practice)."""
    row = session.get(ModelVersion, version_id)
    if row is not None:
        row.status = READY
        session.flush()
    return row


def abandon(session: Session, job_id: str) -> None:
    """The job will not finish registering: its reserved version, if any, becomes failed (so
    it can be deleted and is never served)."""
    row = repository.version_for_job(session, job_id)
    if row is not None and row.status == REGISTERING:
        row.status = FAILED
        session.flush()
