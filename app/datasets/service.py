"""The rules of datasets: accepting an upload, waiting for processing, deleting."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.config import Settings
from app.datasets import repository
from app.db import after_commit
from app.errors import AppError, Conflict, NotFound, Unavailable, error_for_status
from app.idempotency import find, remember
from app.models import Dataset, Project
from app.models.base import utcnow
from app.queue import TaskQueue
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.preflight import preflight

ENDPOINT = "POST /v1/datasets"
# A dataset whose processing crashed its worker more than job_max_attempts times.
ATTEMPTS_EXHAUSTED = "processing_attempts_exhausted"
# When a client should try again after the broker could not take the processing message.
UNSENT_RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class UploadRequest:
    upload: Path
    file_sha256: str
    options: IngestOptions
    name: str


def limits_from(settings: Settings) -> IngestLimits:
    return IngestLimits(
        max_uncompressed_bytes=settings.max_uncompressed_bytes,
        max_entries=settings.max_archive_entries,
        max_image_pixels=settings.max_image_pixels,
        max_file_bytes=settings.max_image_bytes,
        max_text_chars=settings.max_text_chars,
    )


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
    payload = [req.file_sha256, opts.task, opts.multilabel, opts.text_column, opts.label_column]
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
    settings: Settings,
    queue: TaskQueue,
    idempotency_key: str | None,
) -> Dataset:
    """Store the upload under uploads/<id>/ and queue processing once the row is committed.

    The send runs in the commit's after-commit hook and raises BrokerUnavailable when the
    broker cannot take it; the row and its upload are committed by then (see `mark_unsent`).
    """
    opts = req.options
    row = Dataset(
        project_id=project.id,
        name=req.name,
        task=opts.task,
        multilabel=opts.multilabel,
        options={
            "filename": opts.filename,
            "kind": kind,
            "text_column": opts.text_column,
            "label_column": opts.label_column,
        },
        enqueued_at=utcnow(),
    )
    session.add(row)
    session.flush()
    remember(session, project.id, ENDPOINT, idempotency_key, _request_hash(req), row.id)
    target = upload_dir(settings, row.id)
    target.mkdir(parents=True, exist_ok=True)
    req.upload.replace(target / "upload")
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


def upload_dir(settings: Settings, dataset_id: str) -> Path:
    return settings.data_dir / "uploads" / dataset_id


def get(session: Session, project: Project, dataset_id: str) -> Dataset:
    row = repository.get(session, project.id, dataset_id)
    if row is None:
        raise NotFound(f"No dataset {dataset_id!r} in this project.", code="dataset_not_found")
    return row


def delete(session: Session, project: Project, dataset_id: str, settings: Settings) -> None:
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
        folder = settings.data_dir / "datasets" / sha
        after_commit(session, lambda: shutil.rmtree(folder, ignore_errors=True))


def failure(
    options: dict[str, Any],
    code: str,
    message: str,
    status: int,
    report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of a failed dataset (written by the attempt, or the reaper, that
    ends it); `status` is the HTTP status its problem is answered with, `report` the audit of
    what was read when the refusal came after reading the examples."""
    return {
        "status": "failed",
        "error_code": code,
        "error_message": message,
        "options": {**options, "error_status": status},
        "report": report,
        "finished_at": utcnow(),
    }


def attempts_exhausted(options: dict[str, Any], crashes: int) -> dict[str, Any]:
    message = (
        f"Processing this upload stopped its worker {crashes} times (most likely it ran out of "
        "memory, or the machine was lost), so it will not be tried again. Try a smaller upload "
        "(fewer or smaller files), or ask the operators to look for this dataset's id in the "
        "worker logs."
    )
    return failure(options, ATTEMPTS_EXHAUSTED, message, 500)
