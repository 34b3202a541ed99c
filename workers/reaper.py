"""Finding work whose worker died, and work whose message was lost, and sending it again.

The reaper runs in every worker's main process, for the queues that worker consumes: when it
is ready and then every lease interval, from a daemon thread.

Jobs (`train`): a running job whose lease expired lost its worker (its process was killed, its
machine vanished); it goes back to the queue and resumes from its last checkpoint, or ends
cancelled if that was asked for. A queued job whose message was never sent (a preempted job)
is sent now; one still queued several lease intervals after its message was sent, while no job
is running, was probably dropped by the broker and is sent again.

Datasets (`data`): the same for a `processing` dataset. One whose lease expired is sent again
(past job_max_attempts it fails with `processing_attempts_exhausted` instead); one never sent
(the broker was down when it was uploaded) is sent now; one sent long ago and never claimed,
while no dataset is being processed, is sent again.

A duplicate delivery is harmless: only one attempt can hold the lease. When the broker refuses
a send, that row and the ones after it are marked unsent again for the next pass.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.datasets.service import attempts_exhausted, upload_dir
from app.db import after_commit, make_engine, make_session_factory, transaction
from app.jobs import repository as jobs
from app.jobs.states import CANCELLED, CANCELLING, LEASED, QUEUED
from app.models import Dataset, Job
from app.models.base import utcnow
from app.queue import BrokerUnavailable, TaskQueue
from app.registry.registration import abandon
from workers.leases import PROCESSING

log = logging.getLogger("hone.worker.reaper")

# A waiting message counts as lost after this many lease intervals without a claim.
RESEND_AFTER_LEASES = 5

Row = TypeVar("Row", Job, Dataset)
Send = Callable[[str], None]

# A dataset is held while an attempt has its lease, and waits for one otherwise.
_DATASET_HELD = (Dataset.status == PROCESSING) & Dataset.lease_owner.is_not(None)
_DATASET_WAITING = (Dataset.status == PROCESSING) & Dataset.lease_owner.is_(None)


def _expired_leases(
    session: Session, model: type[Row], held: ColumnElement[bool], now: datetime
) -> list[Row]:
    stmt = select(model).where(
        held, or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)
    )
    return list(session.scalars(stmt))


def _take_over(session: Session, row: Job | Dataset, now: datetime, **values: object) -> bool:
    """Compare-and-set: only if the row is still as it was read (no live attempt renewed it)."""
    model = type(row)
    result = session.execute(
        update(model)
        .where(
            model.id == row.id,
            model.status == row.status,
            model.lease_owner.is_not_distinct_from(row.lease_owner),
            or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def _unsent_messages(
    session: Session,
    model: type[Job] | type[Dataset],
    waiting: ColumnElement[bool],
    held: ColumnElement[bool],
    now: datetime,
    resend_before: datetime,
) -> list[str]:
    """Waiting rows to send: never sent, or sent long ago while nothing is held.

    A row may wait behind others for hours; while any row holds a live lease, its message is
    presumed waiting in the broker, not lost, so a long backlog is not flooded with copies.
    """
    running = session.scalar(select(exists().where(held, model.lease_expires_at >= now)))
    unsent = model.enqueued_at.is_(None)
    stmt = select(model.id).where(
        waiting,
        unsent if running else or_(unsent, model.enqueued_at < resend_before),
        or_(model.lease_owner.is_(None), model.lease_expires_at < now),
    )
    resent = []
    for row_id in session.scalars(stmt).all():
        result = session.execute(
            update(model)
            .where(model.id == row_id, waiting)
            .values(enqueued_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            resent.append(row_id)
    return resent


def _send_all(
    sessions: sessionmaker[Session],
    model: type[Job] | type[Dataset],
    ids: list[str],
    send: Send,
    sent_at: datetime,
) -> list[str]:
    """Send each id; returns those sent. At the first the broker refuses, that one and the rest
    go back to "not sent" (enqueued_at NULL), so the next pass tries them again at once."""
    for i, row_id in enumerate(ids):
        try:
            send(row_id)
        except BrokerUnavailable as exc:
            log.warning("broker unavailable; sending again next pass: %s", exc)
            with transaction(sessions) as session:
                session.execute(
                    update(model)
                    .where(model.id.in_(ids[i:]), model.enqueued_at == sent_at)
                    .values(enqueued_at=None)
                    .execution_options(synchronize_session=False)
                )
            return ids[:i]
    return ids


def _resend_before(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(seconds=RESEND_AFTER_LEASES * settings.lease_seconds)


def requeue_stale_jobs(
    sessions: sessionmaker[Session], send: Send, settings: Settings, now: datetime | None = None
) -> list[str]:
    """Requeue (or finish cancelling) jobs whose worker is gone, re-send lost messages;
    returns the ids sent to the broker."""
    now = now or utcnow()
    with transaction(sessions) as session:
        to_send: list[str] = []
        for job in _expired_leases(session, Job, Job.status.in_(LEASED), now):
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
        to_send += _unsent_messages(
            session, Job, Job.status == QUEUED, Job.status.in_(sorted(LEASED)), now,
            _resend_before(settings, now),
        )  # fmt: skip
    sent = _send_all(sessions, Job, to_send, send, now)
    if sent:
        log.info("requeued stale jobs", extra={"job_ids": sent})
    return sent


def requeue_stale_datasets(
    sessions: sessionmaker[Session], send: Send, settings: Settings, now: datetime | None = None
) -> list[str]:
    """Re-send datasets whose worker is gone or whose message was lost, fail those that
    used up their attempts; returns the ids sent to the broker."""
    now = now or utcnow()
    with transaction(sessions) as session:
        to_send: list[str] = []
        for row in _expired_leases(session, Dataset, _DATASET_HELD, now):
            if row.attempts >= settings.job_max_attempts:
                if _take_over(session, row, now, **attempts_exhausted(row.options, row.attempts)):
                    folder = upload_dir(settings, row.id)
                    after_commit(session, partial(shutil.rmtree, folder, True))
                    log.error("dataset failed: worker lost too often", extra={"dataset_id": row.id})
            elif _take_over(session, row, now, enqueued_at=now):
                to_send.append(row.id)
        to_send += _unsent_messages(
            session, Dataset, _DATASET_WAITING, _DATASET_HELD, now, _resend_before(settings, now)
        )
    sent = _send_all(sessions, Dataset, to_send, send, now)
    if sent:
        log.info("re-sent stale datasets", extra={"dataset_ids": sent})
    return sent


# The pool forks a fresh child after every task while this thread may be inside SQLite,
# kombu or logging: a child forked then inherits their internal locks held, and its first
# database call waits for ever (seen as a worker that takes messages and never claims them).
# Forks wait for the current pass to end; in the child the lock starts free again.
_NO_FORK = threading.Lock()


def _before_fork() -> None:
    _NO_FORK.acquire()


def _after_fork_in_parent() -> None:
    _NO_FORK.release()


def _after_fork_in_child() -> None:
    # The child's copy is held (by the forking thread, before the fork); its own later forks
    # (data loader workers) must find a free one.
    global _NO_FORK
    _NO_FORK = threading.Lock()


os.register_at_fork(
    before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
)


class Reaper:
    """The daemon thread that runs the passes of the worker's queues every lease interval.

    Its engine is created inside the thread and holds no connection between passes
    (NullPool): the worker's main process forks pool children all the time, and a child must
    never inherit a live database connection.
    """

    def __init__(self, settings: Settings, *, jobs: bool, datasets: bool) -> None:
        self.settings, self.jobs, self.datasets = settings, jobs, datasets
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
        passes: list[Callable[[], list[str]]] = []
        if self.jobs:
            passes.append(partial(requeue_stale_jobs, sessions, queue.train_job, self.settings))
        if self.datasets:
            passes.append(
                partial(requeue_stale_datasets, sessions, queue.process_dataset, self.settings)
            )
        try:
            while True:
                for reap in passes:
                    try:
                        with _NO_FORK:
                            reap()
                    except Exception:
                        log.warning("reaper pass failed; retrying next interval", exc_info=True)
                if self._stop.wait(self.settings.lease_seconds):
                    return
        finally:
            queue.close()
            engine.dispose()
