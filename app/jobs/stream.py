"""Server-sent events of a job: poll the event log and send what is new until the job ends.

Polling keeps the API stateless (any API process can stream any job, whichever worker writes
the events). Database reads run in the thread pool so a stream never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.jobs import repository
from app.jobs.schemas import EventRead
from app.jobs.states import TERMINAL

POLL_SECONDS = 0.5
# Proxies and load balancers close connections that stay silent for about a minute.
KEEPALIVE_SECONDS = 15.0
BATCH = 200


def _poll(
    sessions: sessionmaker[Session], job_id: str, after: int
) -> tuple[str | None, Sequence[EventRead]]:
    with sessions() as session:
        # Status first: events committed with (or before) a terminal status are then visible.
        status = repository.status_of(session, job_id)
        events = repository.events_since(session, job_id, after, BATCH)
        return status, [EventRead.of(e) for e in events]


def _frame(event: EventRead) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {event.model_dump_json()}\n\n"


async def event_stream(
    sessions: sessionmaker[Session],
    job_id: str,
    after: int,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """`id:`/`event:`/`data:` frames oldest first, keep-alive comments while idle, and a final
    `end` event carrying the job's status once it is terminal and everything has been sent."""
    last_sent = time.monotonic()
    yield ": stream of job events\n\n"
    while True:
        status, events = await run_in_threadpool(_poll, sessions, job_id, after)
        for event in events:
            yield _frame(event)
            after = event.id
        if events:
            last_sent = time.monotonic()
        if status is None or (status in TERMINAL and len(events) < BATCH):
            yield f"event: end\ndata: {json.dumps({'id': job_id, 'status': status})}\n\n"
            return
        if len(events) == BATCH:
            continue  # more are waiting; send them before sleeping
        if await is_disconnected():
            return
        if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(POLL_SECONDS)
