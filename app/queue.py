"""Sending work to the Celery workers. Tasks carry only ids; call these after the commit.

A send either succeeds within seconds or raises BrokerUnavailable: the publish is not retried
(app/celery_factory.py) and, on Redis, connecting and each socket operation are bounded here,
so a broker that is down, unreachable or hung never holds a request for long. The Celery app
is built from the settings given, never from the environment, and nothing of the workers is
imported: the API does not load the worker's own Celery app.
"""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError

from app.celery_factory import PROCESS_DATASET, SEND_TIMEOUT_SECONDS, TRAIN_JOB, make_celery
from app.config import Settings


class BrokerUnavailable(Exception):
    """The broker could not take the message: it was not sent."""


class TaskQueue:
    def __init__(self, settings: Settings) -> None:
        self.celery: Celery = make_celery(settings)
        self.settings = settings
        if not settings.embedded_broker:
            # Producer side only: the consumer's blocking reads must not time out like this.
            self.celery.conf.broker_transport_options = {
                **self.celery.conf.broker_transport_options,
                "socket_connect_timeout": SEND_TIMEOUT_SECONDS,
                "socket_timeout": SEND_TIMEOUT_SECONDS,
            }
        with self.celery.connection_for_write() as conn:  # lazy: connects to nothing
            self._errors = (OperationalError, OSError, *conn.connection_errors)

    def process_dataset(self, dataset_id: str) -> None:
        self._send(PROCESS_DATASET, dataset_id)

    def train_job(self, job_id: str) -> None:
        self._send(TRAIN_JOB, job_id)

    def _send(self, name: str, row_id: str) -> None:
        try:
            self.celery.send_task(name, args=[row_id])
        except self._errors as exc:
            raise BrokerUnavailable(f"{name}({row_id}) not sent: {exc}") from exc

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
