"""`hone up` on a terminal: a short banner, then one readable line per notable event.

A person running Hone on a laptop wants to know where it is, what key to use, where the data
lives and what happens to their datasets and jobs, not the JSON log lines a log collector
wants. When `hone up`'s stdout is a terminal, it and the worker it starts (`hone worker
--console`) log through ConsoleHandler: the records listed in EVENTS become a sentence each;
any other error, and any warning of Hone's own, one line; the rest is left out. `hone api`,
`hone worker` and `hone up` into a pipe or a file keep the JSON lines (app/logging.py).
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any, TextIO

from app.config import Settings

# (logger, unformatted message) -> the sentence, from the record's fields (its `extra`).
Describe = Callable[[logging.LogRecord], str]


def _field(record: logging.LogRecord, name: str) -> Any:
    return getattr(record, name, "?")


def _dataset_done(record: logging.LogRecord) -> str:
    dataset_id, status = _field(record, "dataset_id"), record.getMessage().removeprefix("dataset ")
    if status == "ready":
        return f"dataset {dataset_id} is ready to train on"
    return f"dataset {dataset_id} {status}; `hone datasets show {dataset_id}` says why"


def _job_started(record: logging.LogRecord) -> str:
    attempt = getattr(record, "attempt", 1)
    again = f" (attempt {attempt})" if isinstance(attempt, int) and attempt > 1 else ""
    return f"job {_field(record, 'job_id')} started{again}"


def _job_succeeded(record: logging.LogRecord) -> str:
    model, version = _field(record, "model"), _field(record, "version")
    return f"job {_field(record, 'job_id')} finished: model {model} version {version} is ready"


def _job_failed(record: logging.LogRecord) -> str:
    job_id = _field(record, "job_id")
    exc = record.exc_info[1] if record.exc_info else None
    reason = (
        _exception(exc) if exc is not None else record.getMessage().removeprefix("job failed: ")
    )
    return f"job {job_id} failed ({reason}); `hone jobs show {job_id}` says why"


def _exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).partition(chr(10))[0]}"


# The fields of a record that say what it is about, shown with any other warning or error.
IDS = ("dataset_id", "job_id", "version_id")

EVENTS: dict[tuple[str, str], Describe] = {
    ("hone.api", "api ready"): lambda r: "the API is ready",
    ("celery.apps.worker", "%s ready."): lambda r: "the worker is ready",
    ("hone.worker.datasets", "dataset claimed"): (
        lambda r: f"dataset {_field(r, 'dataset_id')} is being processed"
    ),
    ("hone.worker.datasets", "dataset %s"): _dataset_done,
    ("hone.worker.training", "job claimed"): _job_started,
    ("hone.worker.training", "job succeeded"): _job_succeeded,
    ("hone.worker.training", "job failed: %s"): _job_failed,
    ("hone.worker.training", "job crashed"): _job_failed,
    ("hone.worker.training", "job cancelled"): lambda r: f"job {_field(r, 'job_id')} cancelled",
    ("hone.worker.training", "job preempted and requeued"): (
        lambda r: f"job {_field(r, 'job_id')} was interrupted; it resumes from its checkpoint"
    ),
}


def describe(record: logging.LogRecord) -> str | None:
    """The line a person sees for this record, or None when it is not worth their attention."""
    event = EVENTS.get((record.name, str(record.msg)))
    if event is not None:
        return event(record)
    if record.levelno >= logging.ERROR:
        line = f"error: {record.getMessage()}"
    elif record.levelno >= logging.WARNING and record.name.startswith("hone."):
        line = f"warning: {record.getMessage()}"
    else:
        return None
    about = [
        f"{name.removesuffix('_id')} {getattr(record, name)}"
        for name in IDS
        if hasattr(record, name)
    ]
    if record.exc_info and record.exc_info[1] is not None:
        about.append(_exception(record.exc_info[1]))
    return f"{line} ({'; '.join(about)})" if about else line


class ConsoleHandler(logging.Handler):
    """Writes `HH:MM:SS  <sentence>` lines, each in one write: the API and the worker share
    the terminal, and a line written whole is never interleaved with the other's."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = describe(record)
            if line is None:
                return
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            self.stream.write(f"{stamp}  {line}\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)


def use_console() -> None:
    """Log through ConsoleHandler in this process from now on (app/logging.py), and keep
    Python warnings off the terminal: they go through logging, where only Hone's own show.

    Celery warns that a worker running as root is discouraged. It is, on a shared server; in
    laptop mode the worker is whoever typed `hone up` (root in a container), and the warning
    says nothing that person can act on. Only `hone up` on a terminal drops it.
    """
    from celery.exceptions import SecurityWarning

    from app.logging import set_console_handler

    set_console_handler(ConsoleHandler(sys.stdout))
    warnings.filterwarnings("ignore", category=SecurityWarning, module="celery.platforms")
    logging.captureWarnings(True)


def banner(settings: Settings, database: str, key: str | None) -> str:
    """What `hone up` prints first: where Hone answers, the key once, where the data lives."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"http://{host}:{settings.port}"
    lines = [
        "",
        f"  Hone is starting at {url}",
        "",
        f"  API        {url}/v1  (reference: {url}/docs)",
        f"  Dashboard  {url}/ui",
    ]
    if key is not None:
        lines += [
            f"  API key    {key}  (shown once: keep it)",
            f"             export HONE_API_KEY={key}",
        ]
    elif settings.bootstrap_api_key is not None:
        lines.append("  API key    HONE_BOOTSTRAP_API_KEY")
    else:
        lines.append(
            "  API key    shown at the first start; a new one: hone keys create --project NAME"
        )
    lines += [
        f"  Data       {settings.data_dir}",
        f"  Database   {database}",
        f"  Storage    {settings.store_url}",
        "",
        "  Press Ctrl+C to stop. Events appear below as they happen.",
        "",
    ]
    return "\n".join(lines) + "\n"
