"""HTTP handlers for /v1/datasets: translate requests to service calls and back."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.bounds import IdempotencyKey
from app.datasets import repository, service
from app.datasets.schemas import DatasetList, DatasetRead
from app.db import commit
from app.deps import ProjectDep, SessionDep, SettingsDep, StorageDep
from app.errors import PROBLEM_RESPONSES, BadRequest, Unprocessable
from app.models import Dataset, Project
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.queue import BrokerUnavailable
from app.storage.places import Storage
from app.uploads import ParsedForm, parse_multipart
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestOptions
from ml.tasks import get_task, task_names

log = logging.getLogger("hone.api.datasets")
router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=PROBLEM_RESPONSES)

# Column names are header cells: longer ones are a mistake, and they are stored with the row.
MAX_COLUMN_CHARS = 200
# target_column may name several columns, comma-separated (ml/tasks/regression/targets.py).
MAX_TARGET_COLUMN_CHARS = 2000
_COLUMN_FIELDS = {
    "text_column": ("text", MAX_COLUMN_CHARS),
    "label_column": ("label", MAX_COLUMN_CHARS),
    "target_column": ("target", MAX_TARGET_COLUMN_CHARS),
}


def _upload_schema() -> dict[str, Any]:
    columns = {
        name: {"type": "string", "default": default, "maxLength": limit}
        for name, (default, limit) in _COLUMN_FIELDS.items()
    }
    columns["label_column"]["description"] = "classification: the column of the labels"
    columns["target_column"]["description"] = (
        "regression: the column of the numbers, or several separated by commas (price,rent)"
    )
    properties = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "image .zip, text .csv or .jsonl",
        },
        "task": {"type": "string", "enum": list(task_names())},
        "name": {"type": "string"},
        "multilabel": {
            "type": "boolean",
            "default": False,
            "description": "classification only: several labels per example",
        },
        **columns,
    }
    form = {"type": "object", "required": ["file", "task"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}}}


class DatasetDeleted(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    deleted: bool = True
    model_versions: list[dict[str, Any]]


def _bool_field(form: ParsedForm, name: str) -> bool:
    raw = form.fields.get(name, "false").strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off", ""):
        return False
    raise Unprocessable(
        f"`{name}` must be true or false, got {raw!r}.",
        errors=[{"field": name, "message": "expected true or false"}],
    )


def _column_field(form: ParsedForm, name: str) -> str:
    default, limit = _COLUMN_FIELDS[name]
    raw = form.fields.get(name, default)
    if len(raw) > limit:
        raise Unprocessable(
            f"`{name}` is {len(raw)} characters long; at most {limit} are allowed.",
            code="invalid_field",
            errors=[{"field": name, "message": f"at most {limit} characters"}],
        )
    return raw.strip() or default


def _upload_request(form: ParsedForm) -> service.UploadRequest:
    upload = form.files.get("file")
    if upload is None:
        raise Unprocessable(
            "Missing the `file` part: attach the dataset with -F file=@data.zip.",
            errors=[{"field": "file", "message": "required"}],
        )
    task = form.fields.get("task", "").strip()
    tasks = task_names()
    if task not in tasks:
        raise Unprocessable(
            f"`task` must be one of {', '.join(tasks)}; got {task!r}.",
            code="invalid_task",
            errors=[{"field": "task", "message": f"expected one of {', '.join(tasks)}"}],
        )
    if upload.size == 0:
        raise BadRequest(
            "The uploaded file is empty (0 bytes).",
            code="empty_upload",
            errors=[{"field": "file", "message": "empty file"}],
        )
    options = IngestOptions(
        task=task,
        filename=upload.filename,
        multilabel=_bool_field(form, "multilabel"),
        text_column=_column_field(form, "text_column"),
        label_column=_column_field(form, "label_column"),
        target_column=_column_field(form, "target_column"),
    )
    try:
        get_task(task).columns(options)  # the task checks its options (target_column, ...)
    except IngestError as exc:
        raise service.ingest_problem(exc) from exc
    name = form.fields.get("name", "").strip() or upload.filename or "dataset"
    return service.UploadRequest(
        upload=upload.path, file_sha256=upload.sha256, options=options, name=name[:200]
    )


@router.post(
    "",
    status_code=201,
    response_model=DatasetRead,
    openapi_extra=_upload_schema(),
    responses={202: {"model": DatasetRead, "description": "Accepted; still processing"}},
    summary="Upload a dataset: labelled (classification) or with numeric targets (regression)",
)
async def create_dataset(
    request: Request,
    project: ProjectDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    storage: Storage = request.app.state.storage
    incoming = await run_in_threadpool(storage.scratch)
    try:
        form = await parse_multipart(request, incoming, settings.max_upload_bytes)
        req = _upload_request(form)
        existing = await run_in_threadpool(
            service.existing_for_key, session, project, idempotency_key, req
        )
        if existing is not None:
            return _answer(existing)
        kind = await run_in_threadpool(service.check_upload, req, settings)

        def _store() -> str:
            row = service.create(
                session, project, req, kind, storage, request.app.state.queue, idempotency_key
            )
            try:
                commit(session)  # and then send the processing task
            except BrokerUnavailable as exc:
                log.warning("dataset stored, not sent", extra={"dataset_id": row.id}, exc_info=True)
                service.mark_unsent(row)
                commit(session)
                raise service.not_sent(row.id) from exc
            return row.id

        dataset_id = await run_in_threadpool(_store)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    row = await _wait_for_processing(request, project, dataset_id, settings.upload_wait_seconds)
    return _answer(row)


async def _wait_for_processing(
    request: Request, project: Project, dataset_id: str, timeout: float
) -> Dataset:
    factory = request.app.state.session_factory

    def _load() -> Dataset:
        with factory() as s:
            row = repository.get(s, project.id, dataset_id)
            assert row is not None
            return row

    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        row = await run_in_threadpool(_load)
        if row.status != "processing" or time.monotonic() >= deadline:
            return row
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _answer(row: Dataset) -> JSONResponse:
    body = DatasetRead.of(row).model_dump(mode="json")
    if row.status == "failed" and row.error_code:
        status = int(row.options.get("error_status", 422))
        exc = IngestError(row.error_code, row.error_message or "", status=status)
        raise service.ingest_problem(exc, dataset=body)
    return JSONResponse(body, status_code=201 if row.status == "ready" else 202)


@router.get("", response_model=DatasetList, summary="List datasets, newest first")
def list_datasets(
    project: ProjectDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    after: str | None = None,
) -> DatasetList:
    rows, has_more = repository.list_page(session, project.id, limit=limit, after=after)
    return DatasetList(data=[DatasetRead.of(r) for r in rows], has_more=has_more)


@router.get("/{dataset_id}", response_model=DatasetRead, summary="Get a dataset and its audit")
def get_dataset(dataset_id: str, project: ProjectDep, session: SessionDep) -> DatasetRead:
    return DatasetRead.of(service.get(session, project, dataset_id))


@router.delete("/{dataset_id}", response_model=DatasetDeleted, summary="Delete a dataset")
def delete_dataset(
    dataset_id: str, project: ProjectDep, session: SessionDep, storage: StorageDep
) -> DatasetDeleted:
    versions = repository.versions_trained_on(session, dataset_id)
    service.delete(session, project, dataset_id, storage)
    commit(session)
    return DatasetDeleted(id=dataset_id, model_versions=versions)
