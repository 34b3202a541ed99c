"""requeue_stale_jobs: dead workers' jobs go back to the queue, lost messages are re-sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.models import Job
from app.models.base import utcnow
from tests.support.stack import Backend
from tests.workers.conftest import MakeJob, load
from workers.reaper import requeue_stale_jobs


def test_stale_jobs_are_requeued_cancelled_or_resent(
    database: Backend, sessions: sessionmaker[Session], make_job: MakeJob, tmp_path: Path
) -> None:
    now = utcnow()
    expired, live = now - timedelta(seconds=1), now + timedelta(seconds=30)
    settings = database.settings(data_dir=tmp_path)  # lease_seconds=4: lost after 20 s queued
    dead = make_job(status="running", lease_owner="w1", lease_expires_at=expired, attempts=1)
    alive = make_job(status="running", lease_owner="w2", lease_expires_at=live, attempts=1)
    stopping = make_job(status="cancelling", cancel_requested=True, lease_owner="w3",
                        lease_expires_at=expired)  # fmt: skip
    lost = make_job(status="queued", enqueued_at=now - timedelta(seconds=21))
    preempted = make_job(status="queued", enqueued_at=None)  # released, never sent
    waiting = make_job(status="queued", enqueued_at=now - timedelta(seconds=5))
    (tmp_path / "jobs" / stopping / "checkpoint").mkdir(parents=True)

    mine = {dead, alive, stopping, lost, preempted, waiting}  # the database is shared
    sent: list[str] = []
    requeue_stale_jobs(sessions, sent.append, settings, now=now)
    # `lost` waits: while a job runs, an old message is presumed queued behind it.
    assert set(sent) & mine == {dead, preempted}
    row = load(sessions, dead)
    assert (row.status, row.lease_owner, row.attempts) == ("queued", None, 1)
    assert load(sessions, alive).status == "running"
    assert load(sessions, stopping).status == "cancelled"
    assert not (tmp_path / "jobs" / stopping).exists()
    assert load(sessions, waiting).status == "queued"

    with transaction(sessions) as session:
        session.get_one(Job, alive).status = "succeeded"
    sent.clear()  # nothing runs now: the old message is presumed lost, the rest stay sent
    requeue_stale_jobs(sessions, sent.append, settings, now=now + timedelta(seconds=1))
    assert set(sent) & mine == {lost}
