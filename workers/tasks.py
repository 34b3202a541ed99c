"""Celery tasks: thin wrappers that take an id and hand over to the domain code.

Heavy imports (torch, timm, transformers) happen inside the task, in the forked child, so the
worker's parent process never initialises CUDA.
"""

from __future__ import annotations

from workers.celery_app import celery_app


@celery_app.task(name="hone.process_dataset")
def process_dataset(dataset_id: str) -> None:
    from workers.datasets import process_dataset as run

    run(dataset_id)


@celery_app.task(name="hone.train_job")
def train_job(job_id: str) -> None:
    from workers.training import train_job as run

    run(job_id)
