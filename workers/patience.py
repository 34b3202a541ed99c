"""Waiting out a shared part that is down (the object store, the database) instead of failing
the work that needs it.

A job or dataset whose store or database goes away mid-attempt keeps its attempt: each step
that touches the part is retried with exponential backoff (1 s doubling to 30 s) until it
succeeds, and the attempt carries on from there when the part returns. The wait ends early
only when the attempt is no longer ours to finish (`stop` answers a reason: a cancel, a
preemption, a lost lease), which the caller turns into its usual stop. The heartbeat keeps
the lease meanwhile; when the database itself is down the lease may expire, and the attempt
then learns on the database's return that another attempt has the work (see
app/leasing.py), so nothing is done twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from app.storage.errors import StorageUnavailable

log = logging.getLogger("hone.worker.patience")
T = TypeVar("T")

FIRST_WAIT_SECONDS = 1.0
LONGEST_WAIT_SECONDS = 30.0
_DATABASE_DOWN = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


class Interrupted(Exception):
    """The wait ended because `stop` gave a reason; the part may still be down."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def part_of(exc: BaseException) -> str | None:
    """Which shared part an error says is down: "storage", "database", or None (not an outage)."""
    if isinstance(exc, StorageUnavailable):
        return "storage"
    if isinstance(exc, _DATABASE_DOWN):
        return "database"
    return None


def patiently(
    action: Callable[[], T],
    *,
    what: str,
    extra: dict[str, str],
    stop: Callable[[], str | None] = lambda: None,
    wake: threading.Event | None = None,
) -> T:
    """`action()`, retried while the store or the database is unreachable.

    `wake` (e.g. a preemption flag) cuts a wait short so `stop` is asked at once.
    """
    delay = FIRST_WAIT_SECONDS
    waited = 0.0
    while True:
        try:
            return action()
        except Exception as exc:
            part = part_of(exc)
            if part is None:
                raise
            reason = stop()
            if reason is not None:
                raise Interrupted(reason) from exc
            log.warning(
                "%s: the %s is unreachable; retrying in %.0f s (%.0f s so far)",
                what, part, delay, waited,
                extra={**extra, "part": part, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )  # fmt: skip
            (wake or threading.Event()).wait(delay)
            waited += delay
            delay = min(delay * 2, LONGEST_WAIT_SECONDS)
