"""A job's life once it is queued, as the workers drive it: claim, heartbeat, finish, requeue.

queued -> running (an attempt claims the lease) -> succeeded | failed | cancelled, or back to
queued. Each transition is a compare-and-set on the lease (app/leasing.py), so:
- at most one live attempt: a claim needs the job queued, or running with an expired lease
  (its worker died), and not being cancelled; a duplicate delivery claims nothing;
- a lease expires unless renewed: the heartbeat renews it every lease/3 seconds, and an
  attempt that stalled past the expiry has lost the job; its writes match no row;
- only the holder ends a job, and every end does the same once its row says so (`_ended`):
  an event, the reserved version abandoned unless it is the job's result, and after the
  commit the job's checkpoints and work directory removed;
- a graceful stop (the worker shutting down) requeues the job without counting the attempt;
  a lost worker's job is taken over by a reaper, requeued or, if cancelling, cancelled.

Flushes, never commits: the worker's transaction (app/db.py `transaction`) is the boundary,
and the cleanup runs only once it has committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.db import after_commit
from app.jobs import repository
from app.jobs.states import CANCELLED, CANCELLING, FAILED, QUEUED, SUCCEEDED, JobStatus
from app.models.base import utcnow
from app.registry.registration import abandon
from app.storage.places import Storage

Level = Literal["info", "warn", "error"]


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
    row = repository.claim(session, job_id, owner, lease_seconds, utcnow())
    if row is None:
        return None
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
    """The heartbeat: extend the lease; the job's cancel flag, or None when the lease is no
    longer ours (it expired and another attempt took the job)."""
    return repository.renew(session, job_id, owner, lease_seconds)


def update_owned(session: Session, job_id: str, owner: str, **values: Any) -> bool:
    """Apply `values` (progress, metrics) to the job if this attempt still holds it."""
    return repository.update_owned(session, job_id, owner, **values)


def finish(
    session: Session,
    storage: Storage,
    job_id: str,
    owner: str,
    status: JobStatus,
    message: str,
    *,
    level: Level = "info",
    data: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """End this attempt's job as `status` (with `values`), its event saying `message`; False,
    with nothing written, when the attempt no longer holds it."""
    if not repository.release(
        session, job_id, owner, status=status, finished_at=utcnow(), **values
    ):
        return False
    _ended(session, storage, job_id, status, message, level, data)
    return True


def fail(
    session: Session, storage: Storage, job_id: str, owner: str, code: str, message: str
) -> bool:
    """End the job as failed, `code` and `message` telling its owner why."""
    return finish(
        session, storage, job_id, owner, FAILED, message, level="error", data={"code": code},
        error_code=code, error_message=message,
    )  # fmt: skip


def give_up(session: Session, storage: Storage, job_id: str, owner: str, crashes: int) -> bool:
    """Fail a job whose attempts keep dying with their worker (`crashes` of them) instead of
    letting it kill another: the claim that found it past job_max_attempts ends it."""
    message = (
        f"The job crashed its worker {crashes} times (most likely it ran out of memory, or "
        "the machine was lost) and will not be retried. Try a smaller batch_size or backbone; "
        "the operators can find the crashes in the worker logs under this job's id."
    )
    return finish(
        session, storage, job_id, owner, FAILED, message, level="error",
        error_code="worker_lost", error_message=message,
    )  # fmt: skip


def requeue_preempted(session: Session, job_id: str, owner: str) -> bool:
    """Back to the queue after a graceful stop; False if the job is being cancelled instead.

    The attempt did not crash, so it does not count towards job_max_attempts. The message is
    left to the next reaper pass (enqueued_at NULL: "not sent"): sent from here, the shutting
    down worker itself may take it and then die with it. The job keeps its checkpoints: the
    next attempt resumes from the last one.
    """
    if not repository.requeue_preempted(session, job_id, owner):
        return False
    repository.add_event(
        session,
        job_id,
        "the worker is shutting down: checkpointed and queued again; the next worker "
        "resumes from the checkpoint",
    )
    return True


def take_over_expired(session: Session, storage: Storage, now: datetime) -> list[str]:
    """The reaper's part: every job whose lease expired lost its worker. It goes back to the
    queue to resume from its last checkpoint, or ends cancelled if that was asked for.
    Returns the ids queued again, whose message the caller sends."""
    requeued = []
    for job in repository.expired_leases(session, now):
        if job.cancel_requested or job.status == CANCELLING:
            if repository.take_over(session, job, now, status=CANCELLED, finished_at=now):
                _ended(session, storage, job.id, CANCELLED, "cancelled; its worker had stopped")
        elif repository.take_over(session, job, now, status=QUEUED, enqueued_at=now):
            repository.add_event(
                session, job.id,
                f"the worker running attempt {job.attempts} stopped responding; queued "
                "again to resume from the last checkpoint",
                level="warn",
            )  # fmt: skip
            requeued.append(job.id)
    return requeued


def to_send(session: Session, now: datetime, resend_before: datetime) -> list[str]:
    """Queued jobs whose message must be sent, marked sent at `now`: those never sent (a
    preempted job, a send the broker refused), and those sent before `resend_before` while no
    job runs, whose message the broker probably dropped.

    A job may wait behind others for hours; while any job holds a live lease, its message is
    presumed waiting in the broker, not lost, so a long backlog is not flooded with copies.
    """
    sent_before = None if repository.any_running(session, now) else resend_before
    return [
        job_id
        for job_id in repository.waiting(session, now, sent_before)
        if repository.mark_sent(session, job_id, now)
    ]


def not_sent(session: Session, job_ids: list[str], sent_at: datetime) -> None:
    """The broker refused these jobs' messages (marked sent at `sent_at`): "not sent" again,
    so the next pass tries them at once."""
    repository.mark_unsent(session, job_ids, sent_at)


def _ended(
    session: Session,
    storage: Storage,
    job_id: str,
    status: JobStatus,
    message: str,
    level: Level = "info",
    data: dict[str, Any] | None = None,
) -> None:
    """What every end of a job does once its row says so, whoever ended it."""
    repository.add_event(session, job_id, message, level=level, data=data)
    if status != SUCCEEDED:
        abandon(session, job_id)  # it may have ended after reserving its version
    after_commit(session, partial(storage.discard, storage.drop_job, job_id))
