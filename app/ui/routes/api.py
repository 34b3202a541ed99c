"""/ui/api/v1: the API's own handlers for the dashboard's scripts, under the session cookie.

Each route calls the /v1 handler of the same path with the session's project, so an upload,
a prediction, a job's live events or a dry run behave (limits, errors, idempotency, timing
headers) exactly as through the API. Writes need the session's CSRF token in `X-CSRF-Token`.
The paths end as the API's do, so the edge guards apply the same body caps.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from app.bounds import EventId, IdempotencyKey, VersionNumber
from app.datasets import endpoints as datasets_api
from app.deps import SessionDep, SettingsDep
from app.inference import endpoints as inference_api
from app.jobs import endpoints as jobs_api
from app.jobs.endpoints import JobIdPath
from app.jobs.schemas import JobCreate, JobRead
from app.pagination import DEFAULT_LIMIT
from app.registry.endpoints import NamePath
from app.ui.auth import ApiSigned, ScriptPost

router = APIRouter(prefix="/ui/api/v1", include_in_schema=False)
SSE = jobs_api.SSE


@router.post("/datasets")
async def upload_dataset(
    request: Request,
    signed: ScriptPost,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    return await datasets_api.create_dataset(
        request, signed.project, session, settings, idempotency_key
    )


@router.post("/jobs")
def create_job(
    body: JobCreate,
    request: Request,
    signed: ScriptPost,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The job form's dry run (its `auto` values and time estimate), or a create."""
    answer = jobs_api.create_job(body, request, signed.project, session, settings, idempotency_key)
    if isinstance(answer, Response):
        return answer
    return JSONResponse(answer.model_dump(mode="json"), status_code=201)


@router.get("/jobs/{job_id}", response_model=JobRead)
def get_job(job_id: JobIdPath, signed: ApiSigned, session: SessionDep) -> JobRead:
    return jobs_api.get_job(job_id, signed.project, session)


@router.get("/jobs/{job_id}/events")
async def job_events(
    job_id: JobIdPath,
    request: Request,
    signed: ApiSigned,
    session: SessionDep,
    after: Annotated[EventId | None, Query()] = None,
    last_event_id: Annotated[EventId | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """The live stream EventSource reads (it reconnects with Last-Event-ID by itself)."""
    return await jobs_api.job_events(
        job_id, request, signed.project, session, DEFAULT_LIMIT, after, SSE, last_event_id
    )


@router.post("/models/{name}/predict")
async def predict(
    name: NamePath,
    request: Request,
    signed: ScriptPost,
    settings: SettingsDep,
    version: Annotated[VersionNumber, Query()],
) -> JSONResponse:
    return await inference_api.predict(name, request, signed.project, settings, version, None, None)
