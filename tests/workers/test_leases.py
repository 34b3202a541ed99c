"""Claiming, renewing and releasing a job's lease: compare-and-set on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.jobs import lifecycle, repository
from app.models.base import utcnow
from tests.workers.conftest import MakeJob, load


def _claim(sessions: sessionmaker[Session], job_id: str, owner: str) -> lifecycle.ClaimedJob | None:
    with transaction(sessions) as session:
        return lifecycle.claim(session, job_id, owner, lease_seconds=30)


def test_one_live_attempt_at_a_time(sessions: sessionmaker[Session], make_job: MakeJob) -> None:
    job_id = make_job(requested_hyperparameters={"epochs": 3}, seed=5)
    claimed = _claim(sessions, job_id, "a")
    assert claimed is not None and claimed.attempts == 1
    assert claimed.hyperparameters == {"epochs": 3} and claimed.seed == 5
    assert _claim(sessions, job_id, "b") is None  # a duplicate delivery does nothing
    row = load(sessions, job_id)
    assert row.status == "running" and row.lease_owner == "a" and row.started_at is not None
    with transaction(sessions) as session:
        assert lifecycle.renew(session, job_id, "a", 30) is False
        assert lifecycle.renew(session, job_id, "b", 30) is None


def test_an_expired_lease_can_be_taken_over(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    started = utcnow() - timedelta(minutes=5)
    job_id = make_job(status="running", lease_owner="dead", attempts=1, started_at=started,
                      lease_expires_at=utcnow() - timedelta(seconds=1))  # fmt: skip
    claimed = _claim(sessions, job_id, "b")
    assert claimed is not None and claimed.attempts == 2
    row = load(sessions, job_id)
    assert row.started_at == started  # the job's start, not this attempt's
    with transaction(sessions) as session:
        assert lifecycle.renew(session, job_id, "dead", 30) is None  # the old owner lost it
        assert not lifecycle.update_owned(session, job_id, "dead", progress={"step": 1})


def test_finished_or_cancelled_jobs_are_not_claimed(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    for values in ({"status": "succeeded"}, {"status": "cancelled"}, {"cancel_requested": True}):
        assert _claim(sessions, make_job(**values), "a") is None


def test_cancel_flag_reaches_the_heartbeat_and_preemption_requeues(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    job_id = make_job()
    assert _claim(sessions, job_id, "a") is not None
    with transaction(sessions) as session:
        assert lifecycle.requeue_preempted(session, job_id, "a")
    row = load(sessions, job_id)
    assert (row.status, row.lease_owner, row.attempts) == ("queued", None, 0)
    assert _claim(sessions, job_id, "b") is not None
    with transaction(sessions) as session:
        session.get_one(type(row), job_id).status = "cancelling"
        session.get_one(type(row), job_id).cancel_requested = True
    with transaction(sessions) as session:
        assert lifecycle.renew(session, job_id, "b", 30) is True
        # A job being cancelled never goes back to the queue.
        assert not lifecycle.requeue_preempted(session, job_id, "b")
        assert repository.release(session, job_id, "b", status="cancelled")
    assert load(sessions, job_id).status == "cancelled"
