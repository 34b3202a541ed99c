"""All SQL of the jobs domain: the API's reads and cancels, and the lease transitions the
workers make through app/jobs/lifecycle.py (their compare-and-set is app/leasing.py's).
Flushes, never commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import leasing
from app.jobs.states import CANCELLED, CANCELLING, CLAIMABLE, LEASED, QUEUED, RUNNING
from app.models import Job, JobEvent
from app.models.base import utcnow
from app.pagination import page


def get(session: Session, project_id: str, job_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.id == job_id, Job.project_id == project_id))


def status_of(session: Session, job_id: str) -> str | None:
    return session.scalar(select(Job.status).where(Job.id == job_id))


def list_page(
    session: Session,
    project_id: str,
    *,
    status: str | None,
    model_name: str | None,
    limit: int,
    after: str | None,
) -> tuple[Sequence[Job], bool]:
    stmt = select(Job).where(Job.project_id == project_id)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if model_name is not None:
        stmt = stmt.where(Job.model_name == model_name)
    return page(session, stmt, Job.id, limit=limit, after=after)


def add_event(
    session: Session,
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
) -> None:
    session.add(JobEvent(job_id=job_id, level=level, type=type, message=message, data=data))
    session.flush()


def events_page(
    session: Session, job_id: str, *, limit: int, after: int | None
) -> tuple[Sequence[JobEvent], bool]:
    """Newest first, like every list; `after` is an event id from the previous page."""
    stmt = select(JobEvent).where(JobEvent.job_id == job_id)
    if after is not None:
        stmt = stmt.where(JobEvent.id < after)
    rows = session.scalars(stmt.order_by(JobEvent.id.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


def events_since(session: Session, job_id: str, after: int, limit: int) -> Sequence[JobEvent]:
    """Oldest first, events newer than `after`: what a live stream sends next."""
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return session.scalars(stmt).all()


def cancel_if_queued(session: Session, job_id: str) -> bool:
    """Atomically cancel a job no worker has claimed; False if it is not queued any more."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == QUEUED)
        .values(status=CANCELLED, cancel_requested=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def request_cancel_if_running(session: Session, job_id: str) -> bool:
    """Ask the running attempt to stop (its heartbeat reads the flag); False if not running."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING)
        .values(status=CANCELLING, cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


# ---- leases (app/jobs/lifecycle.py) ------------------------------------------------------

_WAITING = Job.status == QUEUED
_HELD = Job.status.in_(sorted(LEASED))


def claim(
    session: Session, job_id: str, owner: str, lease_seconds: float, now: datetime
) -> Job | None:
    """Lease a queued job, or a running one whose lease expired, that is not being cancelled;
    the row as claimed, or None."""
    claimable = Job.status.in_(CLAIMABLE) & Job.cancel_requested.is_(False)
    started = func.coalesce(Job.__table__.c.started_at, now)
    if not leasing.claim(
        session, Job, job_id, owner, lease_seconds, now, claimable,
        status=RUNNING, started_at=started,
    ):  # fmt: skip
        return None
    return session.scalar(select(Job).where(Job.id == job_id))


def renew(session: Session, job_id: str, owner: str, lease_seconds: float) -> bool | None:
    """Extend the lease; the job's cancel flag, or None when the lease is no longer ours."""
    if not leasing.renew(session, Job, job_id, owner, lease_seconds, LEASED):
        return None
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def update_owned(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    return leasing.set_if_owned(session, Job, job_id, owner, LEASED, values)


def release(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """End `owner`'s hold on the job, setting `values` (its next status) at once."""
    return leasing.set_if_owned(session, Job, job_id, owner, LEASED, {**leasing.RELEASED, **values})


def requeue_preempted(session: Session, job_id: str, owner: str) -> bool:
    """Running (not cancelling) and `owner`'s: back to queued, unsent, the attempt uncounted."""
    values = {
        **leasing.RELEASED,
        "status": QUEUED,
        "attempts": Job.__table__.c.attempts - 1,
        "enqueued_at": None,
    }
    return leasing.set_if_owned(session, Job, job_id, owner, {RUNNING}, values)


def expired_leases(session: Session, now: datetime) -> list[Job]:
    return leasing.expired(session, Job, _HELD, now)


def take_over(session: Session, job: Job, now: datetime, **values: object) -> bool:
    return leasing.take_over(session, job, now, **values)


def any_running(session: Session, now: datetime) -> bool:
    return leasing.any_live(session, Job, _HELD, now)


def waiting(session: Session, now: datetime, sent_before: datetime | None) -> list[str]:
    return leasing.waiting(session, Job, _WAITING, now, sent_before)


def mark_sent(session: Session, job_id: str, now: datetime) -> bool:
    return leasing.mark_sent(session, Job, job_id, _WAITING, now)


def mark_unsent(session: Session, job_ids: Collection[str], sent_at: datetime) -> None:
    leasing.mark_unsent(session, Job, job_ids, sent_at)
