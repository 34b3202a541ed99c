"""Sending work to the Celery workers. Tasks carry only ids; call these after the commit."""

from __future__ import annotations

from celery import Celery

from app.config import Settings


class TaskQueue:
    def __init__(self, settings: Settings) -> None:
        from workers.celery_app import make_celery

        self.celery: Celery = make_celery(settings)
        self.settings = settings

    def process_dataset(self, dataset_id: str) -> None:
        self.celery.send_task("hone.process_dataset", args=[dataset_id])

    def train_job(self, job_id: str) -> None:
        self.celery.send_task("hone.train_job", args=[job_id])

    def ping(self) -> None:
        """Raise if the broker cannot be reached."""
        if self.settings.embedded_broker:
            if not (self.settings.broker_dir / "queue").is_dir():
                raise ConnectionError("the embedded broker folder is missing")
            return
        with self.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)

    def close(self) -> None:
        self.celery.close()
