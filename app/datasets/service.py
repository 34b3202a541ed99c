"""The rules of datasets: accepting an upload, waiting for processing, deleting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.datasets import repository
from app.datasets.limits import limits_from
from app.db import after_commit
from app.errors import AppError, Conflict, NotFound, Unavailable, error_for_status
from app.idempotency import find, remember
from app.models import Dataset, Project
from app.models.base import new_id, utcnow
from app.queue import TaskQueue
from app.storage.places import Storage
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestOptions
from ml.datasets.preflight import preflight

ENDPOINT = "POST /v1/datasets"
# When a client should try again after the broker could not take the processing message.
UNSENT_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class UploadRequest:
    upload: Path
    file_sha256: str
    options: IngestOptions
    name: str


def check_upload(req: UploadRequest, settings: Settings) -> str:
    """Cheap structural checks before anything is stored; returns the upload kind."""
    try:
        return preflight(req.upload, req.options, limits_from(settings))
    except IngestError as exc:
        raise ingest_problem(exc) from exc


def ingest_problem(exc: IngestError, **extra: Any) -> AppError:
    errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
    return error_for_status(exc.status, exc.message, code=exc.code, errors=errors, **extra)


def _request_hash(req: UploadRequest) -> str:
    opts = req.options
    payload = [
        req.file_sha256,
        opts.task,
        opts.multilabel,
        opts.text_column,
        opts.label_column,
        opts.target_column,
    ]
    return hashlib.sha256(json.dumps([*payload, req.name]).encode()).hexdigest()


def existing_for_key(
    session: Session, project: Project, key: str | None, req: UploadRequest
) -> Dataset | None:
    dataset_id = find(session, project.id, ENDPOINT, key, _request_hash(req))
    return repository.get(session, project.id, dataset_id) if dataset_id else None


def create(
    session: Session,
    project: Project,
    req: UploadRequest,
    kind: str,
    storage: Storage,
    queue: TaskQueue,
    idempotency_key: str | None,
) -> Dataset:
    """Put the upload in the store, add its row, and queue processing once it is committed.

    The upload is in the store before the row exists, so a committed row always has its
    upload (StorageUnavailable: nothing is committed). The send runs in the commit's
    after-commit hook and raises BrokerUnavailable when the broker cannot take it; the row
    and its upload are committed by then (see `mark_unsent`).
    """
    opts = req.options
    dataset_id = new_id("ds")
    storage.save_upload(req.upload, dataset_id)
    row = Dataset(
        id=dataset_id,
        project_id=project.id,
        name=req.name,
        task=opts.task,
        multilabel=opts.multilabel,
        options={
            "filename": opts.filename,
            "kind": kind,
            "text_column": opts.text_column,
            "label_column": opts.label_column,
            "target_column": opts.target_column,
        },
        enqueued_at=utcnow(),
    )
    session.add(row)
    session.flush()
    remember(session, project.id, ENDPOINT, idempotency_key, _request_hash(req), row.id)
    after_commit(session, lambda: queue.process_dataset(row.id))
    return row


def mark_unsent(row: Dataset) -> None:
    """The processing message was not sent: a data worker's reaper sends it (enqueued_at NULL)
    at its next pass once the broker is back."""
    row.enqueued_at = None


def not_sent(dataset_id: str) -> Unavailable:
    return Unavailable(
        f"Dataset {dataset_id} is stored, but the task queue could not be reached, so its "
        "processing has not started; it starts by itself once the queue is back. Retrying "
        f"this request with the same Idempotency-Key returns dataset {dataset_id}, and "
        f"GET /v1/datasets/{dataset_id} shows its status.",
        code="broker_unavailable",
        headers={"Retry-After": str(UNSENT_RETRY_AFTER_SECONDS)},
        dataset_id=dataset_id,
    )


def get(session: Session, project: Project, dataset_id: str) -> Dataset:
    row = repository.get(session, project.id, dataset_id)
    if row is None:
        raise NotFound(f"No dataset {dataset_id!r} in this project.", code="dataset_not_found")
    return row


def delete(session: Session, project: Project, dataset_id: str, storage: Storage) -> None:
    row = get(session, project, dataset_id)
    jobs = repository.active_jobs_using(session, row.id)
    if jobs:
        raise Conflict(
            f"Dataset {row.id} is used by unfinished jobs {', '.join(jobs)}; cancel them or wait.",
            code="dataset_in_use",
            jobs=list(jobs),
            model_versions=repository.versions_trained_on(session, row.id),
        )
    if row.status == "processing":
        raise Conflict(
            "The dataset is still being processed; delete it once it is ready or failed.",
            code="dataset_processing",
        )
    sha = row.sha256
    session.delete(row)
    session.flush()
    if sha and repository.other_rows_with_sha(session, sha, row.id) == 0:
        after_commit(session, lambda: storage.discard(storage.delete_dataset, sha))
