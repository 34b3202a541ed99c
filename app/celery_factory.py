"""The Celery wiring both sides share: the app factory, the queue names and the task names.

A leaf: it imports Celery and the settings, nothing of the API or the workers. The API's
producer (app/queue.py) and the worker (workers/celery_app.py) each build their app here from
the settings they were given, so both agree on queues, routes and the broker's transport
options, and neither builds an app of its own from the environment.

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
"""

from __future__ import annotations

from celery import Celery

from app.config import Settings

DATA_QUEUE = "data"  # uploads processed into datasets
TRAIN_QUEUE = "train"  # fine-tuning jobs
PROCESS_DATASET = "hone.process_dataset"  # args: [dataset_id]
TRAIN_JOB = "hone.train_job"  # args: [job_id]

# Bound on connecting to the broker and (on Redis, app/queue.py) on each command of a send.
SEND_TIMEOUT_SECONDS = 2.0
EMBEDDED_POLL_SECONDS = 0.1


def make_celery(settings: Settings) -> Celery:
    app = Celery("hone", broker=settings.celery_broker_url)
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
            PROCESS_DATASET: {"queue": DATA_QUEUE},
            TRAIN_JOB: {"queue": TRAIN_QUEUE},
        },
    )
    return app
