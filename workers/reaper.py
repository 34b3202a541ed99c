"""Finding jobs whose worker died, and jobs whose message was lost, and queueing them again.

`requeue_stale_jobs` runs in every worker's main process: when it is ready and then every
lease interval, from a daemon thread. A running job whose lease expired lost its worker (its
process was killed, its machine vanished); it goes back to the queue and resumes from its
last checkpoint, or ends cancelled if that was asked for. A queued job whose message was
never sent (a preempted job) is sent now; one still queued several lease intervals after its
message was sent, while no job is running, was probably dropped by the broker and is sent
again (a duplicate delivery is harmless: only one attempt can hold the lease).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.db import after_commit, make_engine, make_session_factory, transaction
from app.jobs import repository as jobs
from app.jobs.states import CANCELLED, CANCELLING, LEASED, QUEUED
from app.models import Job
from app.models.base import utcnow
from app.queue import TaskQueue
from app.registry.registration import abandon

log = logging.getLogger("hone.worker.reaper")

# A queued job's message counts as lost after this many lease intervals without a claim.
RESEND_AFTER_LEASES = 5


def _expired_leases(session: Session, now: datetime) -> list[Job]:
    stmt = select(Job).where(
        Job.status.in_(LEASED),
        or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
    )
    return list(session.scalars(stmt))


def _take_over(session: Session, job: Job, now: datetime, **values: object) -> bool:
    """Compare-and-set: only if the job is still as it was read (no live attempt renewed it)."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            Job.status == job.status,
            Job.lease_owner.is_not_distinct_from(job.lease_owner),
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _unsent_messages(session: Session, now: datetime, resend_before: datetime) -> list[str]:
    """Queued jobs to send: never sent (preempted), or sent long ago while nothing runs.

    A job may wait behind others for hours; while any job holds a live lease, its message is
    presumed waiting in the broker, not lost, so a long backlog is not flooded with copies.
    """
    running = session.scalar(
        select(exists().where(Job.status.in_(sorted(LEASED)), Job.lease_expires_at >= now))
    )
    unsent = Job.enqueued_at.is_(None)
    stmt = select(Job.id).where(
        Job.status == QUEUED,
        unsent if running else or_(unsent, Job.enqueued_at < resend_before),
        or_(Job.lease_owner.is_(None), Job.lease_expires_at < now),
    )
    resent = []
    for job_id in session.scalars(stmt).all():
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            resent.append(job_id)
    return resent


def requeue_stale_jobs(
    sessions: sessionmaker[Session],
    send: Callable[[str], None],
    settings: Settings,
    now: datetime | None = None,
) -> list[str]:
    """Requeue (or finish cancelling) jobs whose worker is gone, re-send lost messages;
    returns the ids sent to the broker."""
    now = now or utcnow()
    resend_before = now - timedelta(seconds=RESEND_AFTER_LEASES * settings.lease_seconds)
    with transaction(sessions) as session:
        to_send: list[str] = []
        for job in _expired_leases(session, now):
            if job.cancel_requested or job.status == CANCELLING:
                if _take_over(session, job, now, status=CANCELLED, finished_at=now):
                    jobs.add_event(session, job.id, "cancelled; its worker had stopped")
                    abandon(session, job.id)
                    folder = settings.data_dir / "jobs" / job.id
                    after_commit(session, partial(shutil.rmtree, folder, True))
            elif _take_over(session, job, now, status=QUEUED, enqueued_at=now):
                jobs.add_event(
                    session, job.id,
                    f"the worker running attempt {job.attempts} stopped responding; queued "
                    "again to resume from the last checkpoint",
                    level="warn",
                )  # fmt: skip
                to_send.append(job.id)
        to_send += _unsent_messages(session, now, resend_before)
    for job_id in to_send:
        send(job_id)
    if to_send:
        log.info("requeued stale jobs", extra={"job_ids": to_send})
    return to_send


class Reaper:
    """The daemon thread that runs requeue_stale_jobs every lease interval.

    Its engine is created inside the thread and holds no connection between passes
    (NullPool): the worker's main process forks pool children all the time, and a child must
    never inherit a live database connection.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hone-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        engine = make_engine(self.settings.sqlalchemy_url, poolclass=NullPool)
        sessions = make_session_factory(engine)
        queue = TaskQueue(self.settings)
        try:
            while True:
                try:
                    requeue_stale_jobs(sessions, queue.train_job, self.settings)
                except Exception:
                    log.warning("reaper pass failed; retrying next interval", exc_info=True)
                if self._stop.wait(self.settings.lease_seconds):
                    return
        finally:
            queue.close()
            engine.dispose()
