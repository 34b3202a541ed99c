"""Running one delivery of a fine-tuning job: the `train` queue's work.

A delivery claims the job's lease or does nothing (a duplicate, a cancelled or finished job).
While it trains, a heartbeat keeps the lease and watches for cancellation, and SIGTERM asks
for a graceful stop: checkpoint, then release the job to the queue for the next worker (see
app/jobs/lifecycle.py `requeue_preempted`). The outcome is always written to the job row by
the attempt that holds it: succeeded (with a registered version), failed (with a code and a
message for the user), cancelled, or queued again; lifecycle.finish does what every end does.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from app.db import transaction
from app.jobs import lifecycle
from app.jobs.lifecycle import ClaimedJob
from app.jobs.states import CANCELLED
from ml.training.spec import StopReason, TrainingStopped
from workers import leases
from workers.context import WorkerContext, context
from workers.failures import describe
from workers.heartbeat import Heartbeat
from workers.job_hooks import JobHooks
from workers.job_inputs import JobInputs, job_inputs
from workers.patience import Interrupted, patiently
from workers.registration import Cancelled, LeaseLost, register

log = logging.getLogger("hone.worker.training")


def train_job(job_id: str) -> None:
    ctx = context()
    owner = leases.new_owner()
    job = patiently(
        lambda: _claim(ctx, job_id, owner), what="claiming a job", extra={"job_id": job_id}
    )
    if job is not None and job.attempts > ctx.settings.job_max_attempts:
        return
    if job is None:
        log.info(
            "job skipped: finished, cancelled, or held by a live attempt", extra={"job_id": job_id}
        )
        return
    log.info("job claimed", extra={"job_id": job_id, "attempt": job.attempts, "owner": owner})
    _attempt(ctx, job, owner)


def _claim(ctx: WorkerContext, job_id: str, owner: str) -> ClaimedJob | None:
    """The claimed job (None: not ours to run); past its attempts it is failed here."""
    with transaction(ctx.sessions) as session:
        job = lifecycle.claim(session, job_id, owner, ctx.settings.lease_seconds)
        if job is not None and job.attempts > ctx.settings.job_max_attempts:
            lifecycle.give_up(session, ctx.storage, job.id, owner, crashes=job.attempts - 1)
            log.error("job failed: worker lost too often", extra={"job_id": job.id})
    return job


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
        hooks = JobHooks(ctx.sessions, heartbeat, preempt, ctx.storage)
        hooks.event("info", f"attempt {job.attempts} started", data={"attempt": job.attempts})
        try:
            # Already imported by the worker's main process (workers/preload.py).
            from ml.training.run import run_training

            extra = {"job_id": job.id}
            # While the store or the database is down, each step waits for it to return.
            waiting = partial(patiently, extra=extra, stop=hooks.should_stop, wake=preempt)

            def _inputs() -> JobInputs:
                with transaction(ctx.sessions) as session:
                    return job_inputs(session, settings, ctx.storage, job)

            inputs = waiting(_inputs, what="fetching a job's inputs")
            outcome = run_training(inputs.spec, hooks)
            hooks.flush()
            # Events reported while the database was down go in before the outcome's own.
            waiting(hooks.write_events, what="recording a job's events")
            registered = waiting(
                lambda: register(hooks, job, inputs, outcome, ctx.storage),
                what="registering a trained model",
            )
        except (TrainingStopped, Interrupted) as stop:
            hooks.flush()
            heartbeat.stop()
            reason: StopReason = "preempt" if stop.reason == "preempt" else "cancel"
            _stopped(ctx, job, owner, reason, heartbeat.lost)
        except Cancelled:
            heartbeat.stop()
            _stopped(ctx, job, owner, "cancel", lost=False)
        except LeaseLost:
            _stopped(ctx, job, owner, "cancel", lost=True)
        except Exception as exc:
            heartbeat.stop()
            _failed(ctx, job, owner, exc)
        else:
            log.info(
                "job succeeded",
                extra={"job_id": job.id, "model": registered.name, "version": registered.version},
            )


def _stopped(
    ctx: WorkerContext, job: ClaimedJob, owner: str, reason: StopReason, lost: bool
) -> None:
    if lost:
        log.warning("lease lost; leaving the job to its new attempt", extra={"job_id": job.id})
        return
    patiently(
        lambda: _record_stop(ctx, job, owner, reason),
        what="recording a stopped job", extra={"job_id": job.id},
    )  # fmt: skip


def _record_stop(ctx: WorkerContext, job: ClaimedJob, owner: str, reason: StopReason) -> None:
    with transaction(ctx.sessions) as session:
        if reason == "preempt" and lifecycle.requeue_preempted(session, job.id, owner):
            log.info("job preempted and requeued", extra={"job_id": job.id})
            return
        message = "cancelled; nothing was registered"
        if not lifecycle.finish(session, ctx.storage, job.id, owner, CANCELLED, message):
            return
    log.info("job cancelled", extra={"job_id": job.id})


def _failed(ctx: WorkerContext, job: ClaimedJob, owner: str, exc: Exception) -> None:
    failure = describe(exc, job.id)
    if failure.expected:
        log.warning("job failed: %s", failure.code, extra={"job_id": job.id})
    else:
        log.exception("job crashed", extra={"job_id": job.id})

    def _record() -> None:
        with transaction(ctx.sessions) as session:
            lifecycle.fail(session, ctx.storage, job.id, owner, failure.code, failure.message)

    patiently(_record, what="recording a failed job", extra={"job_id": job.id})
