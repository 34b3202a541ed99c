"""Leases: at most one live attempt per job, and per dataset being processed.

Every transition is a compare-and-set UPDATE guarded by the owner, so a worker that lost its
lease (it stalled past the expiry and the reaper gave the row to another) can never overwrite
the row: its updates simply match no row. Jobs and datasets share the SQL below; only their
statuses differ (a dataset is leased while `processing`, a job while running or cancelling).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from app.jobs.states import CLAIMABLE, LEASED, QUEUED, RUNNING
from app.models import Dataset, Job
from app.models.base import utcnow

Leased = type[Job] | type[Dataset]
PROCESSING = "processing"  # the one status in which a dataset is leased
RELEASED: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


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


def _claim(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    lease_seconds: float,
    now: datetime,
    claimable: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Take the row's lease if it is claimable and no live attempt holds it; one more attempt."""
    result = session.execute(
        update(model)
        .where(
            model.id == row_id,
            claimable,
            or_(model.lease_owner.is_(None), model.lease_expires_at < now),
        )
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=model.__table__.c.attempts + 1,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def claim(session: Session, job_id: str, owner: str, lease_seconds: float) -> ClaimedJob | None:
    """Take the job if it is queued or running with an expired lease; None when another
    attempt holds a live lease, or the job is finished, cancelled or gone."""
    now = utcnow()
    claimable = Job.status.in_(CLAIMABLE) & Job.cancel_requested.is_(False)
    started = func.coalesce(Job.__table__.c.started_at, now)
    if not _claim(
        session, Job, job_id, owner, lease_seconds, now, claimable,
        status=RUNNING, started_at=started,
    ):  # fmt: skip
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


def _renew(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    lease_seconds: float,
    statuses: Collection[str],
) -> bool:
    expires = utcnow() + timedelta(seconds=lease_seconds)
    return _set_if_owned(session, model, row_id, owner, statuses, {"lease_expires_at": expires})


def renew(session: Session, job_id: str, owner: str, lease_seconds: float) -> bool | None:
    """Extend the lease; the job's cancel flag, or None when the lease is no longer ours."""
    if not _renew(session, Job, job_id, owner, lease_seconds, LEASED):
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def _set_if_owned(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    statuses: Collection[str],
    values: dict[str, Any],
) -> bool:
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.lease_owner == owner, model.status.in_(list(statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def update_owned(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """Apply `values` to the job if this attempt still holds it; False otherwise."""
    return _set_if_owned(session, Job, job_id, owner, LEASED, values)


def release(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """End this attempt's hold on the job, setting `values` (its next status) at once."""
    return _set_if_owned(session, Job, job_id, owner, LEASED, {**RELEASED, **values})


def requeue_preempted(session: Session, job_id: str, owner: str) -> bool:
    """Back to the queue after a graceful stop; False if the job is being cancelled instead.

    The attempt did not crash, so it does not count towards job_max_attempts. The message is
    left to the next reaper pass (enqueued_at NULL: "not sent"): sent from here, the shutting
    down worker itself may take it and then die with it.
    """
    values = {
        **RELEASED,
        "status": QUEUED,
        "attempts": Job.__table__.c.attempts - 1,
        "enqueued_at": None,
    }
    return _set_if_owned(session, Job, job_id, owner, {RUNNING}, values)


def claim_dataset(
    session: Session, dataset_id: str, owner: str, lease_seconds: float
) -> int | None:
    """Take a `processing` dataset no live attempt holds; this attempt's number, or None
    (another attempt holds it, or it is ready, failed or deleted: a duplicate delivery)."""
    now = utcnow()
    claimable = Dataset.status == PROCESSING
    if not _claim(session, Dataset, dataset_id, owner, lease_seconds, now, claimable):
        return None
    return session.scalar(select(Dataset.attempts).where(Dataset.id == dataset_id))


def renew_dataset(
    session: Session, dataset_id: str, owner: str, lease_seconds: float
) -> bool | None:
    """Extend the lease: False (a dataset has no cancel flag), or None once it is not ours."""
    return (
        False if _renew(session, Dataset, dataset_id, owner, lease_seconds, {PROCESSING}) else None
    )


def release_dataset(session: Session, dataset_id: str, owner: str, **values: Any) -> bool:
    """Finish this attempt's dataset with `values` (ready or failed), if it still holds it."""
    return _set_if_owned(session, Dataset, dataset_id, owner, {PROCESSING}, {**RELEASED, **values})
