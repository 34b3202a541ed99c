"""Celery tasks: thin wrappers that take an id and hand over to the domain code.

The domain modules are imported inside the task, so importing this module stays cheap;
`hone worker` has already imported them in its main process (workers/preload.py), so in a
worker these imports cost nothing. The API never imports this module: it sends by name
(app/queue.py), and the names are app/celery_factory.py's.
"""

from __future__ import annotations

from app.celery_factory import PROCESS_DATASET, TRAIN_JOB
from workers.celery_app import celery_app


@celery_app.task(name=PROCESS_DATASET)
def process_dataset(dataset_id: str) -> None:
    from workers.datasets import process_dataset as run

    run(dataset_id)


@celery_app.task(name=TRAIN_JOB)
def train_job(job_id: str) -> None:
    from workers.training import train_job as run

    run(job_id)
