"""A training attempt's database lease: at most one live attempt per job.

Every transition is a compare-and-set UPDATE guarded by the owner, so a worker that lost its
lease (it stalled past the expiry and the reaper gave the job to another) can never overwrite
the job: its updates simply match no row.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.jobs.states import CLAIMABLE, LEASED, QUEUED, RUNNING
from app.models import Job
from app.models.base import utcnow


def new_owner() -> str:
    """Unique per attempt: host and pid say where it runs, the uuid tells attempts apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ClaimedJob:
    """What an attempt needs from the job row, read once right after claiming it."""

    id: str
    project_id: str
    dataset_id: str
    validation_dataset_id: str | None
    backbone: str
    model_name: str
    method: str
    validation_split: float | None
    hyperparameters: dict[str, Any]
    seed: int
    attempts: int


def claim(session: Session, job_id: str, owner: str, lease_seconds: float) -> ClaimedJob | None:
    """Take the job if it is queued or running with an expired lease; None when another
    attempt holds a live lease, or the job is finished, cancelled or gone."""
    now = utcnow()
    job = Job.__table__.c
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status.in_(CLAIMABLE),
            Job.cancel_requested.is_(False),
            or_(Job.lease_owner.is_(None), Job.lease_expires_at < now),
        )
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=job.attempts + 1,
            status=RUNNING,
            started_at=func.coalesce(job.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        return None
    row = session.scalar(select(Job).where(Job.id == job_id))
    assert row is not None
    return ClaimedJob(
        id=row.id,
        project_id=row.project_id,
        dataset_id=row.dataset_id,
        validation_dataset_id=row.validation_dataset_id,
        backbone=row.backbone,
        model_name=row.model_name,
        method=row.method,
        validation_split=row.validation_split,
        hyperparameters=dict(row.requested_hyperparameters),
        seed=row.seed,
        attempts=row.attempts,
    )


def renew(session: Session, job_id: str, owner: str, lease_seconds: float) -> bool | None:
    """Extend the lease; the job's cancel flag, or None when the lease is no longer ours."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    if not _set_if_owned(session, job_id, owner, LEASED, {"lease_expires_at": expires}):
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def _set_if_owned(
    session: Session, job_id: str, owner: str, statuses: Collection[str], values: dict[str, Any]
) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status.in_(list(statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def update_owned(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """Apply `values` to the job if this attempt still holds it; False otherwise."""
    return _set_if_owned(session, job_id, owner, LEASED, values)


def release(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """End this attempt's hold on the job, setting `values` (its next status) at once."""
    released = {"lease_owner": None, "lease_expires_at": None, **values}
    return _set_if_owned(session, job_id, owner, LEASED, released)


def requeue_preempted(session: Session, job_id: str, owner: str) -> bool:
    """Back to the queue after a graceful stop; False if the job is being cancelled instead.

    The attempt did not crash, so it does not count towards job_max_attempts. The message is
    left to the next reaper pass (enqueued_at NULL: "not sent"): sent from here, the shutting
    down worker itself may take it and then die with it.
    """
    values = {
        "status": QUEUED,
        "lease_owner": None,
        "lease_expires_at": None,
        "attempts": Job.__table__.c.attempts - 1,
        "enqueued_at": None,
    }
    return _set_if_owned(session, job_id, owner, {RUNNING}, values)
