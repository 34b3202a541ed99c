"""The heartbeat thread: renews a running attempt's lease and brings back the cancel flag.

Training asks "should I stop?" after every step; the answer must be a memory read, so the
database is read here, every lease/3 seconds, and the result kept in two flags. Dataset
processing uses the same thread with app/datasets/lifecycle.py's `renew` (it has no cancel
flag).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.jobs import lifecycle

log = logging.getLogger("hone.worker.heartbeat")

# (session, row id, owner, lease seconds) -> the cancel flag, or None once the lease is lost.
Renew = Callable[[Session, str, str, float], bool | None]


class Heartbeat:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: str,
        owner: str,
        lease_seconds: float,
        renew: Renew = lifecycle.renew,
    ) -> None:
        # job_id: the leased row's id, a job's or (with the datasets' renew) a dataset's.
        self._sessions, self.job_id, self.owner = sessions, job_id, owner
        self.lease_seconds = lease_seconds
        self._renew = renew
        self.cancel_requested = False
        self.lost = False  # another attempt owns the job now: stop without touching it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """No more beats (once the current one is done). Called before the attempt writes its
        outcome: a beat after that would find the lease released and say it was lost."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.lease_seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            self.beat()

    def beat(self) -> None:
        try:
            with transaction(self._sessions) as session:
                state = self._renew(session, self.job_id, self.owner, self.lease_seconds)
        except Exception:
            # A database hiccup: keep working; the lease has two more beats before it expires.
            log.warning("heartbeat failed", extra={"job_id": self.job_id}, exc_info=True)
            return
        if state is None:
            if not self.lost:
                log.warning("lease lost; stopping", extra={"job_id": self.job_id})
            self.lost = True
        else:
            self.cancel_requested = state
