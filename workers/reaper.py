"""Finding work whose worker died, and work whose message was lost, and sending it again.

The reaper runs in every worker's main process, for the queues that worker consumes: when it
is ready and then every lease interval, from a daemon thread. What becomes of each row is the
domains' state machine (app/jobs/lifecycle.py, app/datasets/lifecycle.py); here, the passes,
their transactions and the sending.

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
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.datasets import lifecycle as datasets
from app.db import make_engine, make_session_factory, transaction
from app.jobs import lifecycle as jobs
from app.models.base import utcnow
from app.queue import BrokerUnavailable, TaskQueue
from app.storage.places import Storage

log = logging.getLogger("hone.worker.reaper")

# A waiting message counts as lost after this many lease intervals without a claim.
RESEND_AFTER_LEASES = 5
# An upload is put in the store a moment before its row commits; past this age, one that no
# processing dataset names is garbage.
ORPHAN_UPLOAD_AGE = timedelta(hours=1)

Send = Callable[[str], None]
# (session, ids, sent at): the domain's "not sent" again, for a send the broker refused.
NotSent = Callable[[Session, list[str], datetime], None]


def _send_all(
    sessions: sessionmaker[Session],
    not_sent: NotSent,
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
                not_sent(session, ids[i:], sent_at)
            return ids[:i]
    return ids


def _resend_before(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(seconds=RESEND_AFTER_LEASES * settings.lease_seconds)


def requeue_stale_jobs(
    sessions: sessionmaker[Session],
    send: Send,
    settings: Settings,
    now: datetime | None = None,
    storage: Storage | None = None,
) -> list[str]:
    """Requeue (or finish cancelling) jobs whose worker is gone, re-send lost messages;
    returns the ids sent to the broker."""
    now = now or utcnow()
    storage = storage or Storage.from_settings(settings)
    with transaction(sessions) as session:
        to_send = jobs.take_over_expired(session, storage, now)
        to_send += jobs.to_send(session, now, _resend_before(settings, now))
    sent = _send_all(sessions, jobs.not_sent, to_send, send, now)
    if sent:
        log.info("requeued stale jobs", extra={"job_ids": sent})
    return sent


def requeue_stale_datasets(
    sessions: sessionmaker[Session],
    send: Send,
    settings: Settings,
    now: datetime | None = None,
    storage: Storage | None = None,
) -> list[str]:
    """Re-send datasets whose worker is gone or whose message was lost, fail those that
    used up their attempts; returns the ids sent to the broker."""
    now = now or utcnow()
    storage = storage or Storage.from_settings(settings)
    with transaction(sessions) as session:
        taken = datasets.take_over_expired(session, storage, settings.job_max_attempts, now)
        to_send = taken.resend + datasets.to_send(session, now, _resend_before(settings, now))
    for dataset_id in taken.failed:
        log.error("dataset failed: worker lost too often", extra={"dataset_id": dataset_id})
    sent = _send_all(sessions, datasets.not_sent, to_send, send, now)
    if sent:
        log.info("re-sent stale datasets", extra={"dataset_ids": sent})
    return sent


def sweep_orphan_uploads(
    sessions: sessionmaker[Session], storage: Storage, now: datetime | None = None
) -> list[str]:
    """Delete uploads no dataset will process (datasets.orphan_uploads); returns their ids."""
    now = now or utcnow()
    with transaction(sessions) as session:
        orphans = datasets.orphan_uploads(session, storage, now, ORPHAN_UPLOAD_AGE)
    for dataset_id in orphans:
        storage.drop_upload(dataset_id)
    if orphans:
        log.info("removed orphaned uploads", extra={"dataset_ids": orphans})
    return orphans


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
    never inherit a live database connection. (Its store client is per process: a forked
    child makes its own, app/storage/store.py.)
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
        settings = self.settings
        engine = make_engine(settings.sqlalchemy_url, poolclass=NullPool)
        sessions = make_session_factory(engine)
        queue = TaskQueue(settings)
        storage = Storage.from_settings(settings)
        passes: list[Callable[[], list[str]]] = []
        if self.jobs:
            passes.append(
                partial(requeue_stale_jobs, sessions, queue.train_job, settings, storage=storage)
            )
        if self.datasets:
            passes.append(
                partial(
                    requeue_stale_datasets, sessions, queue.process_dataset, settings,
                    storage=storage,
                )
            )  # fmt: skip
            passes.append(partial(sweep_orphan_uploads, sessions, storage))
        try:
            while True:
                for reap in passes:
                    try:
                        with _NO_FORK:
                            reap()
                    except Exception:
                        log.warning("reaper pass failed; retrying next interval", exc_info=True)
                if self._stop.wait(settings.lease_seconds):
                    return
        finally:
            queue.close()
            engine.dispose()
