"""The worker's Celery app: built from the settings by the shared factory, plus what only a
worker needs.

Queues, routes and the reliability settings (acks late, prefetch 1, one task per child, the
visibility timeout, no publish retry) are app/celery_factory.py's, shared with the API's
producer (app/queue.py). Here, for `hone worker` (and `celery -A workers.celery_app`):
- `celery_app`, built from get_settings(), with the task modules to import;
- the event-loop tick that hands a free process the next message at once (_PromptPickup);
- the main process runs the reaper (workers/reaper.py: stale jobs and datasets) and, on a
  warm shutdown, forwards SIGTERM to the pool children so a training job checkpoints and
  requeues itself instead of running on until the container is killed.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from celery import bootsteps, signals

import workers.devices  # noqa: F401  (pins each pool process to its own GPU)
from app.celery_factory import DATA_QUEUE, TRAIN_QUEUE, make_celery
from app.config import get_settings

TICK_SECONDS = 0.05
TASK_MODULES = ["workers.tasks"]


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
celery_app.conf.include = TASK_MODULES
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
    for pid in _busy_children(consumer):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue


def _busy_children(consumer: Any) -> set[int]:
    """Pool children running a task. An idle child must not get the SIGTERM: killed while it
    waits on the pool's inqueue lock, it leaves the lock held and the main process hangs in
    billiard's Pool._help_stuff_finish at exit (seen with a pool of 2 or more: one per GPU)."""
    pool = getattr(consumer.pool, "_pool", None)
    cache = getattr(pool, "_cache", None) or {}
    return {pid for job in list(cache.values()) for pid in job.worker_pids()}
