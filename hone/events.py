"""A job's live events over server-sent events, resumed with `Last-Event-ID` after a drop.

The API sends `id:`/`event:`/`data:` frames oldest first, `:` comments to keep an idle
connection open, and a final `end` event once the job has finished and every event has been
sent. A connection that ends without `end` (the network, a proxy, an API restart) or that
ends with an `unavailable` event (the database went away; its `retry:` says when to come
back) is a drop: the iterator reconnects, asking for what follows the last event it
yielded, so no event is lost or repeated. Consecutive failed reconnects back off (0.5 s,
1 s, 2 s ... capped 8 s) and give up after `max_retries`, as every request does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx

from hone._transport import Transport, backoff
from hone.errors import APIConnectionError, WaitTimeout
from hone.types import Event

SSE = "text/event-stream"
# The API sends a comment at least every 15 s; silence much longer than that is a dead link.
READ_TIMEOUT_SECONDS = 45.0


@dataclass
class Frame:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry_ms: int | None = None


def parse_frames(lines: Iterable[str]) -> Iterator[Frame]:
    """Server-sent event frames from the body's lines (comments skipped), per the WHATWG
    event-stream format: `field: value`, one space after the colon optional, data lines
    joined with newlines, a blank line ending the frame."""
    frame, data, seen = Frame(), list[str](), False
    for line in lines:
        if not line:
            if seen:
                frame.data = "\n".join(data)
                yield frame
            frame, data, seen = Frame(), [], False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        seen = True
        if name == "data":
            data.append(value)
        elif name == "event":
            frame.event = value
        elif name == "id":
            frame.id = value
        elif name == "retry" and value.isdigit():
            frame.retry_ms = int(value)


class _Dropped(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.delay = reason, delay


def stream_events(
    transport: Transport, job_id: str, after: int | None, deadline: float | None = None
) -> Iterator[Event]:
    """The job's events after `after` (from the first when None), oldest first, until `end`.
    With a `deadline` (time.monotonic()), WaitTimeout is raised once it passes."""
    last = after
    failures = 0
    while True:
        opened: list[bool] = []
        try:
            for event in _one_connection(transport, job_id, last, deadline, opened):
                last = event.id
                yield event
            return
        except _Dropped as drop:
            # A drop after the server answered is a fresh start; only reconnects that fail
            # one after another count against max_retries.
            failures = 1 if opened else failures + 1
            if failures > transport.max_retries:
                raise APIConnectionError(
                    transport.base_url, f"the event stream of {job_id} dropped: {drop.reason}"
                ) from drop
            delay = drop.delay if drop.delay is not None else backoff(failures - 1)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise WaitTimeout(f"job {job_id} did not finish in time") from drop
            time.sleep(delay)


def _one_connection(
    transport: Transport,
    job_id: str,
    last: int | None,
    deadline: float | None,
    opened: list[bool],
) -> Iterator[Event]:
    """One connection's events; `opened` gets an entry once the server has answered 200."""
    headers = {"Accept": SSE}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    read = READ_TIMEOUT_SECONDS
    if deadline is not None:
        read = max(0.1, min(read, deadline - time.monotonic()))
    timeout = httpx.Timeout(transport.timeout, read=read)
    try:
        with transport.stream(
            "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
        ) as response:
            opened.append(True)
            for frame in parse_frames(response.iter_lines()):
                if frame.event == "end":
                    return
                if frame.event == "unavailable":
                    delay = frame.retry_ms / 1000 if frame.retry_ms is not None else None
                    raise _Dropped("the server lost its database", delay)
                if frame.data:
                    yield Event.model_validate_json(frame.data)
    except httpx.ReadTimeout as exc:
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(f"job {job_id} did not finish in time") from exc
        raise _Dropped(f"no data for {read:.0f} s") from exc
    except httpx.TransportError as exc:
        raise _Dropped(str(exc) or type(exc).__name__) from exc
    raise _Dropped("the connection closed before the job's end")
