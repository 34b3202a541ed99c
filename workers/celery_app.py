"""Celery configuration: queues, reliability settings, and the broker from settings.

Reliability choices (see docs/architecture.md):
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a task whose process dies is redelivered.
- prefetch 1 and one task per child process: a training job owns its process, and CUDA is never
  initialised in the parent before the fork (the parent imports torch, see workers/preload.py,
  but never initialises CUDA).
- the embedded filesystem broker is polled every 100 ms (kombu's default is 1 s, which would
  add up to a second between `POST /v1/jobs` and the worker picking the job up).
- the visibility timeout is longer than the longest allowed job, so Redis never hands a running
  job to a second worker; the database lease covers the rest.
- publishing is not retried and is bounded in time (app/queue.py): a failed send is the
  reaper's to repeat, not the caller's to wait for.
- the main process runs the reaper (workers/reaper.py: stale jobs and datasets) and, on a
  warm shutdown, forwards SIGTERM to the pool children so a training job checkpoints and
  requeues itself instead of running on until the container is killed.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import Celery, bootsteps, signals

from app.config import Settings, get_settings
from app.queue import SEND_TIMEOUT_SECONDS

DATA_QUEUE = "data"
TRAIN_QUEUE = "train"
EMBEDDED_POLL_SECONDS = 0.1
TICK_SECONDS = 0.05


def make_celery(settings: Settings) -> Celery:
    app = Celery("hone", broker=settings.celery_broker_url, include=["workers.tasks"])
    transport_options: dict[str, object] = {
        "visibility_timeout": settings.job_max_runtime_seconds + 3600,
    }
    if settings.embedded_broker:
        # Producer and consumer share one folder; ensure_dirs() creates it. Every folder is
        # named: kombu's default for the exchange tables ("control") is relative to the
        # working directory of whichever process starts first.
        folder = settings.broker_dir / "queue"
        transport_options = {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "processed_folder": str(settings.broker_dir / "done"),
            "control_folder": str(settings.broker_dir / "control"),
            "store_processed": False,
            "polling_interval": EMBEDDED_POLL_SECONDS,
        }
    app.conf.update(
        # The filesystem transport has no fanout exchange for remote control.
        worker_enable_remote_control=not settings.embedded_broker,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        # A send fails within seconds instead of retrying while the caller waits: the row is
        # the source of truth, and the reaper sends what was not sent (app/queue.py).
        task_publish_retry=False,
        broker_connection_timeout=SEND_TIMEOUT_SECONDS,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=DATA_QUEUE,
        task_routes={
            "hone.process_dataset": {"queue": DATA_QUEUE},
            "hone.train_job": {"queue": TRAIN_QUEUE},
        },
    )
    return app


class _PromptPickup(bootsteps.StartStopStep):
    """Wake the worker's event loop every TICK_SECONDS, so a free process is offered the next
    message at once.

    With acks_late, prefetch 1 and Redis, the consumer stops asking Redis for messages
    (BRPOP) while its process is busy, and asks again only on its event loop's next turn,
    which with nothing else to do comes up to seconds later (celery/celery#4378, #7718):
    measured here, 1.4 s between `POST /v1/jobs` and the worker starting the job. A turn of
    an idle loop costs microseconds.
    """

    requires = {"celery.worker.components:Hub"}

    def start(self, parent: Any) -> None:
        hub = getattr(parent, "hub", None)
        if hub is not None:
            hub.call_repeatedly(TICK_SECONDS, _tick)


def _tick() -> None:
    """Nothing: the loop's turn itself re-issues the consumer's BRPOP when it has room."""


celery_app = make_celery(get_settings())
celery_app.steps["worker"].add(_PromptPickup)


# The worker's consumer (for the pool's child pids) and the reaper, set when the worker is ready.
_running: dict[str, Any] = {}


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    from workers.reaper import Reaper

    _running["consumer"] = sender
    # A worker re-sends only the work of the queues it consumes: a `data`-only worker would
    # otherwise fill a `train` queue that nobody consumes here, and the other way round.
    consumed = set(sender.app.amqp.queues.consume_from) if sender is not None else set()
    if consumed & {DATA_QUEUE, TRAIN_QUEUE}:
        jobs, datasets = TRAIN_QUEUE in consumed, DATA_QUEUE in consumed
        _running["reaper"] = Reaper(get_settings(), jobs=jobs, datasets=datasets).start()


@signals.worker_shutting_down.connect
def _on_worker_shutting_down(how: str = "", **_: Any) -> None:
    """Runs in the main process's signal handler: keep it to os.kill calls."""
    reaper = _running.pop("reaper", None)
    if reaper is not None:
        reaper.stop()
    consumer = _running.get("consumer")
    if how != "Warm" or consumer is None:
        return
    for pid in consumer.pool.info.get("processes", []):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
