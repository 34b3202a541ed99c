"""Job pages: the list (status filter), a job's live page, cancelling, the new-job form."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from app.backbones import endpoints as backbones_api
from app.bounds import IDEMPOTENCY_KEY_MAX
from app.datasets import endpoints as datasets_api
from app.datasets.schemas import DatasetRead
from app.deps import SessionDep, SettingsDep, StorageDep
from app.errors import AppError, NotFound
from app.jobs import endpoints as jobs_api
from app.jobs.endpoints import JobIdPath
from app.jobs.states import JobStatus
from app.models import Project
from app.pagination import CURSOR_PATTERN, MAX_LIMIT
from app.ui.auth import FormPost, PageSigned, Signed
from app.ui.render import page, render
from app.ui.views import jobs as views
from app.ui.views.common import PAGE_SIZE, paging

router = APIRouter(prefix="/ui/jobs", include_in_schema=False)
Cursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN)]


@router.get("")
@page
def jobs_page(
    request: Request,
    signed: PageSigned,
    session: SessionDep,
    status: JobStatus | None = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    after: Cursor = None,
) -> Response:
    listing = jobs_api.list_jobs(signed.project, session, status, model, PAGE_SIZE, after)
    cursor = listing.data[-1].id if listing.data else None
    pages = paging("/ui/jobs", listing.data, listing.has_more, after, cursor, status=status,
                   model=model)  # fmt: skip
    context = {
        "rows": [views.row(job) for job in listing.data],
        "status": status,
        "model": model,
        "statuses": views.STATUSES,
        "paging": pages,
    }
    return render(request, "jobs.html", context)


async def _form_page(
    request: Request,
    signed: Signed,
    session: Session,
    values: Mapping[str, str],
    errors: list[dict[str, str]] | None = None,
    detail: str | None = None,
    status: int = 200,
) -> Response:
    settings = request.app.state.settings
    backbones = await backbones_api.list_backbones(request, signed.project, settings)
    listing = await run_in_threadpool(
        datasets_api.list_datasets, signed.project, session, MAX_LIMIT, None
    )
    context = views.form(listing.data, backbones.data, values, errors or [], detail)
    context["idempotency_key"] = uuid.uuid4().hex
    return render(request, "job_new.html", context, status=status)


@router.get("/new")
@page
async def new_job_page(
    request: Request,
    signed: PageSigned,
    session: SessionDep,
    dataset_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    return await _form_page(request, signed, session, {"dataset_id": dataset_id or ""})


@router.post("")
@page
async def create_job(
    request: Request, signed: FormPost, session: SessionDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    body, errors = views.request_of(values)
    if body is None:
        detail = "Some fields need a fix: " + "; ".join(e["message"] for e in errors)
        return await _form_page(request, signed, session, values, errors, detail, 422)
    key = values.get("idempotency_key", "")[:IDEMPOTENCY_KEY_MAX] or None
    try:
        job = await run_in_threadpool(
            jobs_api.create_job, body, request, signed.project, session, settings, key
        )
    except AppError as exc:
        return await _form_page(request, signed, session, values, exc.errors, exc.detail,
                                exc.status)  # fmt: skip
    assert not isinstance(job, Response)  # not a dry run
    return RedirectResponse(f"/ui/jobs/{job.id}", status_code=303)


def _dataset(project: Project, session: Session, dataset_id: str) -> DatasetRead | None:
    try:
        return datasets_api.get_dataset(dataset_id, project, session)
    except NotFound:  # deleted since: the job keeps its id
        return None


@router.get("/{job_id}")
@page
def job_page(
    job_id: JobIdPath, request: Request, signed: PageSigned, session: SessionDep
) -> Response:
    job = jobs_api.get_job(job_id, signed.project, session)
    dataset = _dataset(signed.project, session, job.dataset_id)
    return render(request, "job.html", views.page(job, dataset))


@router.post("/{job_id}/cancel")
@page
def cancel_job(
    job_id: JobIdPath, signed: FormPost, session: SessionDep, storage: StorageDep, request: Request
) -> Response:
    jobs_api.cancel_job(job_id, signed.project, session, storage)
    return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)
