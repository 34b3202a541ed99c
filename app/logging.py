"""Structured logs: one JSON object per line, carrying the request id of the current request;
or, in a process that prints for a person (`hone up` on a terminal: app/console.py), the
handler it set."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
# Set once, before anything calls configure_logging (the API's factory, the worker's start).
_console_handler: logging.Handler | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def set_console_handler(handler: logging.Handler) -> None:
    """From now on configure_logging installs `handler`, whatever the settings say."""
    global _console_handler
    _console_handler = handler


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    if _console_handler is not None:
        handler = _console_handler
    elif json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
