"""The rules of jobs: creating one (after app/jobs/checks.py), cancelling one."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import after_commit
from app.errors import Conflict, NotFound
from app.idempotency import find, remember
from app.jobs import checks, repository
from app.jobs.schemas import JobCreate
from app.jobs.states import CANCELLING, TERMINAL
from app.models import Dataset, Job, Project
from app.models.base import utcnow
from app.queue import TaskQueue
from app.storage.places import Storage
from ml.backbones.spec import BackboneSpec

ENDPOINT = "POST /v1/jobs"
log = logging.getLogger("hone.api.jobs")


def request_hash(body: JobCreate) -> str:
    # A dry run stores no key (see create_job), so its flag is no part of what a key names.
    fields = body.model_dump(mode="json", exclude={"dry_run"})
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def get(session: Session, project: Project, job_id: str) -> Job:
    row = repository.get(session, project.id, job_id)
    if row is None:
        raise NotFound(f"No job {job_id!r} in this project.", code="job_not_found")
    return row


def existing_for_key(
    session: Session, project: Project, key: str | None, body: JobCreate
) -> Job | None:
    job_id = find(session, project.id, ENDPOINT, key, request_hash(body))
    return repository.get(session, project.id, job_id) if job_id else None


@dataclass(frozen=True)
class CheckedRequest:
    """What a job request names, each part checked: its datasets and its backbone."""

    dataset: Dataset
    validation: Dataset | None
    backbone: BackboneSpec


def check(
    session: Session,
    project: Project,
    body: JobCreate,
    *,
    catalog: Mapping[str, BackboneSpec],
    settings: Settings,
) -> CheckedRequest:
    """Refuse what cannot become a job; a dry run is refused exactly as a create is."""
    checks.check_request(body)
    dataset = checks.ready_dataset(session, project, body.dataset_id, "dataset_id")
    val = None
    if body.validation_dataset_id:
        val_id = body.validation_dataset_id
        val = checks.ready_dataset(session, project, val_id, "validation_dataset_id")
    spec = checks.backbone(catalog, body.backbone, settings.local_cache_dir)
    checks.check_fit(spec, dataset, val)
    checks.check_model_name(session, project, body.model_name, dataset.task)
    return CheckedRequest(dataset, val, spec)


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
    checked = check(session, project, body, catalog=catalog, settings=settings)
    dataset, val, spec = checked.dataset, checked.validation, checked.backbone
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


def cancel(session: Session, project: Project, job_id: str, storage: Storage) -> Job:
    """Queued: cancelled at once (it will never run). Running: `cancelling` until the worker
    stops, within a heartbeat. Already cancelling: unchanged. Finished: Conflict."""
    row = get(session, project, job_id)
    # The status may move under us (a worker claims or requeues the job): each UPDATE is a
    # compare-and-set, so retry the pair a few times.
    for _ in range(3):
        if repository.cancel_if_queued(session, job_id):
            repository.add_event(session, job_id, "cancelled before it started")
            # A preempted job waits in the queue with its checkpoint; nothing resumes it now.
            after_commit(session, partial(storage.discard, storage.drop_job, job_id))
            break
        if repository.request_cancel_if_running(session, job_id):
            repository.add_event(session, job_id, "cancellation requested; stopping the worker")
            break
        session.refresh(row)
        if row.status == CANCELLING:
            return row
        if row.status in TERMINAL:
            raise Conflict(
                f"Job {job_id} is already {row.status}; only unfinished jobs can be cancelled.",
                code="job_finished",
                job_status=row.status,
            )
    else:
        raise Conflict(f"Job {job_id} is changing state; try again.", code="job_busy")
    session.refresh(row)
    return row
