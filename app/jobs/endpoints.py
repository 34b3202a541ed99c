"""HTTP handlers for /v1/jobs: translate requests to service calls and back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import WithJsonSchema
from sqlalchemy.orm import Session

from app.bounds import INT_MAX, EventId, IdempotencyKey, ResourceId
from app.db import commit
from app.deps import ProjectDep, SessionDep, SettingsDep, StorageDep
from app.errors import (
    DATABASE_ERRORS,
    OUTAGE_RETRY_AFTER_SECONDS,
    PROBLEM_RESPONSES,
    outage,
    problem_body,
)
from app.jobs import planning, repository, service
from app.jobs.schemas import EventList, EventRead, JobCreate, JobList, JobPlanRead, JobRead
from app.jobs.states import JobStatus
from app.jobs.stream import event_stream
from app.models import Job, Project
from app.pagination import CURSOR_PATTERN, DEFAULT_LIMIT, Limit
from app.registry.repository import version_refs

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

SSE = "text/event-stream"
JobIdPath = Annotated[ResourceId, Path()]
# An absent header is absent, never the string "null": documented as a plain integer.
EVENT_ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": INT_MAX}
_EVENTS_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A list of events, newest first; or, with `Accept: text/event-stream`, "
        "a live stream of them oldest first (resume with `Last-Event-ID`), ending with an "
        "`end` event once the job has finished, or with an `unavailable` event (a problem, "
        "`database_unavailable`, and a `retry:` delay) if the database is lost meanwhile.",
        "content": {SSE: {"schema": {"type": "string"}}},
    }
}


def _read(session: Session, row: Job) -> JobRead:
    refs = version_refs(session, [row.model_version_id] if row.model_version_id else [])
    return JobRead.of(row, refs.get(row.model_version_id or ""))


_CREATE_DOC: dict[int | str, dict[str, Any]] = {
    201: {"description": "The job, queued for a worker."},
    200: {
        "model": JobPlanRead,
        "description": 'With `"dry_run": true`: the plan the job would run and its estimated '
        "time on the workers' class of host. Nothing is created or queued, and an "
        "`Idempotency-Key` is neither looked up nor stored.",
    },
}


@router.post(
    "",
    status_code=201,
    response_model=JobRead,
    responses=_CREATE_DOC,
    summary="Create a fine-tuning job, or plan one (dry_run)",
)
def create_job(
    body: JobCreate,
    request: Request,
    project: ProjectDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JobRead | Response:
    if body.dry_run:
        # Read-only and never committed; the key is left for the real create to use.
        plan = planning.plan(
            session, project, body, catalog=request.app.state.catalog, settings=settings
        )
        return JSONResponse(plan.model_dump(mode="json"))
    row = service.existing_for_key(session, project, idempotency_key, body)
    if row is None:
        row = service.create(
            session,
            project,
            body,
            catalog=request.app.state.catalog,
            settings=settings,
            queue=request.app.state.queue,
            idempotency_key=idempotency_key,
        )
        commit(session)
    return _read(session, row)


@router.get("", response_model=JobList, summary="List jobs, newest first")
def list_jobs(
    project: ProjectDep,
    session: SessionDep,
    status: JobStatus | None = None,
    model_name: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="a job id from the previous page")
    ] = None,
) -> JobList:
    rows, has_more = repository.list_page(
        session, project.id, status=status, model_name=model_name, limit=limit, after=after
    )
    refs = version_refs(session, [r.model_version_id for r in rows if r.model_version_id])
    data = [JobRead.of(r, refs.get(r.model_version_id or "")) for r in rows]
    return JobList(data=data, has_more=has_more)


@router.get("/{job_id}", response_model=JobRead, summary="Get a job")
def get_job(job_id: JobIdPath, project: ProjectDep, session: SessionDep) -> JobRead:
    return _read(session, service.get(session, project, job_id))


@router.post("/{job_id}/cancel", response_model=JobRead, summary="Cancel a job")
def cancel_job(
    job_id: JobIdPath, project: ProjectDep, session: SessionDep, storage: StorageDep
) -> JobRead:
    row = service.cancel(session, project, job_id, storage)
    commit(session)
    return _read(session, row)


def _events_page(
    session: Session, project: Project, job_id: str, limit: int, after: int | None
) -> EventList:
    service.get(session, project, job_id)
    rows, has_more = repository.events_page(session, job_id, limit=limit, after=after)
    return EventList(data=[EventRead.of(r) for r in rows], has_more=has_more)


@router.get(
    "/{job_id}/events",
    response_model=EventList,
    responses=_EVENTS_DOC,
    summary="List a job's events, or stream them live (Accept: text/event-stream)",
)
async def job_events(
    job_id: JobIdPath,
    request: Request,
    project: ProjectDep,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[EventId | None, Query()] = None,
    accept: Annotated[str, Header()] = "application/json",
    last_event_id: Annotated[
        EventId | None, Header(alias="Last-Event-ID"), WithJsonSchema(EVENT_ID_SCHEMA)
    ] = None,
) -> Response:
    if SSE not in accept:
        page = await run_in_threadpool(_events_page, session, project, job_id, limit, after)
        return JSONResponse(page.model_dump(mode="json"))
    await run_in_threadpool(service.get, session, project, job_id)
    # The stream reads on short sessions of its own: hold no pooled connection for its length.
    await run_in_threadpool(session.close)
    start = last_event_id if last_event_id is not None else after or 0
    frames = event_stream(request.app.state.session_factory, job_id, start, request.is_disconnected)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_until_outage(frames), media_type=SSE, headers=headers)


async def _until_outage(frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, ended by an `unavailable` event if the database goes away: the answer has
    started (200), so the 503 problem travels as an event, with `retry:` for EventSource to
    reconnect (with Last-Event-ID) after it, instead of a connection broken mid-response."""
    try:
        async for frame in frames:
            yield frame
    except DATABASE_ERRORS as exc:
        problem = outage(exc)
        assert problem is not None
        body = problem_body(problem.status, problem.title, problem.detail, problem.code)
        retry_ms = OUTAGE_RETRY_AFTER_SECONDS * 1000
        yield f"retry: {retry_ms}\nevent: unavailable\ndata: {json.dumps(body)}\n\n"
