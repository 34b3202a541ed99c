"""The training engine's link to the job row (ml.training.spec.TrainHooks for one attempt).

Events are written as they come; progress is kept in memory and written at most once per
`progress_interval` (the engine may report every step). Neither may fail an hour-long job
when the database has a hiccup: progress is the latest value, so a lost write is made good by
the next; an event that cannot be written is kept, in order, and written before the next one
(and, at the latest, before the job's outcome), so an outage loses none of them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.jobs import lifecycle, repository
from app.storage.errors import StorageUnavailable
from app.storage.places import Storage
from ml.training.spec import StopReason
from workers.heartbeat import Heartbeat
from workers.jsonsafe import jsonable

log = logging.getLogger("hone.worker.training")

# Events kept while the database is down, at most: an outage longer than this many events
# (days of epochs) loses its oldest ones rather than the worker's memory.
MAX_UNWRITTEN_EVENTS = 1000


class JobHooks:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        heartbeat: Heartbeat,
        preempt: threading.Event,
        storage: Storage,
        progress_interval: float = 1.0,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.heartbeat = heartbeat
        self.job_id, self.owner = heartbeat.job_id, heartbeat.owner
        self.preempt = preempt
        self.progress_interval = progress_interval
        self.metrics: dict[str, Any] = {}  # the latest reported, what the job row shows
        self.last_progress: dict[str, Any] = {}
        self._pending: dict[str, Any] | None = None
        self._last_write = 0.0
        # (level, message, type, data) of events not yet written, oldest first.
        self._unwritten: list[tuple[str, str, str, dict[str, Any] | None]] = []

    def event(
        self,
        level: Literal["info", "warn", "error"],
        message: str,
        *,
        type: Literal["message", "metrics"] = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        if self.heartbeat.lost:
            return
        self._unwritten.append((level, message, type, jsonable(data)))
        if len(self._unwritten) > MAX_UNWRITTEN_EVENTS:
            del self._unwritten[0]
            log.warning("dropped the oldest unwritten event", extra={"job_id": self.job_id})
        self._try_write_events()

    def write_events(self) -> None:
        """Write the events not written yet, oldest first, in one transaction; raises (and
        keeps them) while the database is still unreachable."""
        if not self._unwritten or self.heartbeat.lost:
            return
        with transaction(self.sessions) as session:
            for level, message, type, data in self._unwritten:
                repository.add_event(
                    session, self.job_id, message, level=level, type=type, data=data
                )
        self._unwritten.clear()

    def _try_write_events(self) -> None:
        try:
            self.write_events()
        except Exception:
            log.warning(
                "could not record an event; kept to record later (%d waiting)",
                len(self._unwritten), extra={"job_id": self.job_id}, exc_info=True,
            )  # fmt: skip

    def progress(
        self,
        *,
        epoch: int,
        epochs: int,
        step: int,
        total_steps: int,
        eta_seconds: float | None,
        metrics: dict[str, float],
    ) -> None:
        self.metrics |= jsonable(metrics)
        self._pending = self.last_progress = {
            "epoch": epoch,
            "epochs": epochs,
            "step": step,
            "total_steps": total_steps,
            "eta_seconds": None if eta_seconds is None else round(eta_seconds, 1),
        }
        if time.monotonic() - self._last_write >= self.progress_interval:
            self.flush()

    def flush(self) -> None:
        """Write the events kept from an outage, and the latest progress and metrics, if any
        are unwritten."""
        if self._unwritten:
            self._try_write_events()
        if self._pending is None or self.heartbeat.lost:
            return
        progress, self._pending = self._pending, None
        self._last_write = time.monotonic()
        try:
            with transaction(self.sessions) as session:
                lifecycle.update_owned(
                    session, self.job_id, self.owner, progress=progress, metrics=self.metrics
                )
        except Exception:
            log.warning("could not record progress", extra={"job_id": self.job_id}, exc_info=True)

    def checkpoint_saved(self, directory: Path) -> None:
        """Copy the checkpoint to the store, so an attempt on any host resumes from it. Best
        effort: with the store unreachable, training goes on and the next checkpoint tries
        again; a resumed attempt starts from the last one that reached the store."""
        if self.heartbeat.lost:
            return
        try:
            self.storage.save_checkpoint(self.job_id, directory)
        except StorageUnavailable:
            log.warning(
                "could not copy a checkpoint to the store", extra={"job_id": self.job_id},
                exc_info=True,
            )  # fmt: skip

    def should_stop(self) -> StopReason | None:
        # A cancel wins over a preemption: a cancelled job must not go back to the queue.
        if self.heartbeat.cancel_requested or self.heartbeat.lost:
            return "cancel"
        if self.preempt.is_set():
            return "preempt"
        return None
