"""Running one delivery of a fine-tuning job: the `train` queue's work.

A delivery claims the job's lease or does nothing (a duplicate, a cancelled or finished job).
While it trains, a heartbeat keeps the lease and watches for cancellation, and SIGTERM asks
for a graceful stop: checkpoint, then release the job to the queue for the next worker (see
leases.requeue_preempted). The outcome is always written to the job row by the attempt that
holds it: succeeded (with a registered version), failed (with a code and a message for the
user), cancelled, or queued again.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from app.db import transaction
from app.jobs import repository as jobs
from app.jobs.states import CANCELLED, FAILED
from app.models.base import utcnow
from app.registry.registration import abandon
from ml.training.spec import StopReason, TrainingStopped
from workers import leases
from workers.context import WorkerContext, context
from workers.failures import describe
from workers.heartbeat import Heartbeat
from workers.job_hooks import JobHooks
from workers.job_inputs import job_inputs
from workers.leases import ClaimedJob
from workers.registration import Cancelled, LeaseLost, register

log = logging.getLogger("hone.worker.training")


def train_job(job_id: str) -> None:
    ctx = context()
    owner = leases.new_owner()
    with transaction(ctx.sessions) as session:
        job = leases.claim(session, job_id, owner, ctx.settings.lease_seconds)
        if job is not None and job.attempts > ctx.settings.job_max_attempts:
            _give_up(session, job, owner)
            return
    if job is None:
        log.info(
            "job skipped: finished, cancelled, or held by a live attempt", extra={"job_id": job_id}
        )
        return
    log.info("job claimed", extra={"job_id": job_id, "attempt": job.attempts, "owner": owner})
    _attempt(ctx, job, owner)


def _give_up(session: Session, job: ClaimedJob, owner: str) -> None:
    crashes = job.attempts - 1
    message = (
        f"The job crashed its worker {crashes} times (most likely it ran out of memory, or "
        "the machine was lost) and will not be retried. Try a smaller batch_size or backbone; "
        "the operators can find the crashes in the worker logs under this job's id."
    )
    leases.release(
        session,
        job.id,
        owner,
        status=FAILED,
        error_code="worker_lost",
        error_message=message,
        finished_at=utcnow(),
    )
    jobs.add_event(session, job.id, message, level="error")
    abandon(session, job.id)
    log.error("job failed: worker lost too often", extra={"job_id": job.id})


@contextmanager
def _sigterm_sets(flag: threading.Event) -> Iterator[None]:
    """While training, SIGTERM (the worker is shutting down) asks for a graceful stop."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed by the main thread
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: flag.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _attempt(ctx: WorkerContext, job: ClaimedJob, owner: str) -> None:
    settings = ctx.settings
    preempt = threading.Event()
    heartbeat = Heartbeat(ctx.sessions, job.id, owner, settings.lease_seconds)
    with heartbeat, _sigterm_sets(preempt):
        hooks = JobHooks(ctx.sessions, heartbeat, preempt)
        hooks.event("info", f"attempt {job.attempts} started", data={"attempt": job.attempts})
        try:
            # Already imported by the worker's main process (workers/preload.py).
            from ml.training.run import run_training

            with transaction(ctx.sessions) as session:
                inputs = job_inputs(session, settings, job)
            outcome = run_training(inputs.spec, hooks)
            hooks.flush()
            registered = register(hooks, job, inputs, outcome, settings.data_dir)
        except TrainingStopped as stop:
            hooks.flush()
            _stopped(ctx, job, owner, stop.reason, heartbeat.lost)
        except Cancelled:
            _stopped(ctx, job, owner, "cancel", lost=False)
        except LeaseLost:
            _stopped(ctx, job, owner, "cancel", lost=True)
        except Exception as exc:
            _failed(ctx, job, owner, exc)
        else:
            shutil.rmtree(inputs.spec.work_dir, ignore_errors=True)
            log.info(
                "job succeeded",
                extra={"job_id": job.id, "model": registered.name, "version": registered.version},
            )


def _stopped(
    ctx: WorkerContext, job: ClaimedJob, owner: str, reason: StopReason, lost: bool
) -> None:
    work = ctx.settings.data_dir / "jobs" / job.id
    if lost:
        log.warning("lease lost; leaving the job to its new attempt", extra={"job_id": job.id})
        return
    with transaction(ctx.sessions) as session:
        if reason == "preempt" and leases.requeue_preempted(session, job.id, owner):
            jobs.add_event(
                session,
                job.id,
                "the worker is shutting down: checkpointed and queued again; the next worker "
                "resumes from the checkpoint",
            )
            log.info("job preempted and requeued", extra={"job_id": job.id})
            return
        if not leases.release(session, job.id, owner, status=CANCELLED, finished_at=utcnow()):
            return
        jobs.add_event(session, job.id, "cancelled; nothing was registered")
        abandon(session, job.id)
    shutil.rmtree(work, ignore_errors=True)
    log.info("job cancelled", extra={"job_id": job.id})


def _failed(ctx: WorkerContext, job: ClaimedJob, owner: str, exc: Exception) -> None:
    failure = describe(exc, job.id)
    if failure.expected:
        log.warning("job failed: %s", failure.code, extra={"job_id": job.id})
    else:
        log.exception("job crashed", extra={"job_id": job.id})
    with transaction(ctx.sessions) as session:
        if not leases.release(
            session,
            job.id,
            owner,
            status=FAILED,
            error_code=failure.code,
            error_message=failure.message,
            finished_at=utcnow(),
        ):
            return
        jobs.add_event(session, job.id, failure.message, level="error", data={"code": failure.code})
        abandon(session, job.id)  # it may have failed after reserving its version
    shutil.rmtree(ctx.settings.data_dir / "jobs" / job.id, ignore_errors=True)
