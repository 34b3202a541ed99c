"""All SQL of the jobs domain (the API's side; the worker's lease SQL is in workers/leases.py).
Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.jobs.states import CANCELLED, CANCELLING, QUEUED, RUNNING
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
