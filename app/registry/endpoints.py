"""HTTP handlers for /v1/models: models, versions, their artifacts, aliases."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO, Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from app.bounds import VersionNumber
from app.db import after_commit, commit
from app.deps import ProjectDep, SessionDep, StorageDep
from app.errors import PROBLEM_RESPONSES
from app.inference.resolution import forget_model
from app.jobs.schemas import MODEL_NAME_PATTERN
from app.pagination import CURSOR_PATTERN, DEFAULT_LIMIT, Limit
from app.registry import repository, service
from app.registry.archive import CHUNK, SUMS_FILE, forget_archive
from app.registry.schemas import (
    ALIAS_PATTERN,
    AliasDeleted,
    AliasRead,
    AliasSet,
    ModelDetail,
    ModelList,
    ModelRead,
    VersionDeleted,
    VersionRead,
    VersionSummary,
)

log = logging.getLogger("hone.api.registry")

router = APIRouter(prefix="/v1/models", tags=["models"], responses=PROBLEM_RESPONSES)

AliasPath = Annotated[str, Path(pattern=ALIAS_PATTERN)]
# Every model is named by a job's model_name; a name outside that pattern names nothing.
NamePath = Annotated[str, Path(pattern=MODEL_NAME_PATTERN)]
VersionPath = Annotated[VersionNumber, Path()]
ZIP = "application/zip"
SHA256_HEADER = "X-Hone-Artifact-SHA256"
_ARTIFACT_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A zip of every file of the version's artifact (model.safetensors, "
        "config.json, hf/ with the transformers config and tokenizer, the ONNX files when "
        f"there are any) at its root, plus `{SUMS_FILE}`: one `<sha256>  <path>` line per "
        "file, the format `sha256sum -c` checks.",
        "content": {ZIP: {"schema": {"type": "string", "format": "binary"}}},
        "headers": {
            SHA256_HEADER: {
                "description": "The sha256 of the whole zip, in hex",
                "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            },
            "Content-Length": {
                "description": "The zip's size in bytes",
                "schema": {"type": "integer", "minimum": 0},
            },
            "Content-Disposition": {
                "description": 'attachment; filename="<name>-v<version>.zip"',
                "schema": {"type": "string"},
            },
        },
    },
}


@router.get("", response_model=ModelList, summary="List models, newest first")
def list_models(
    project: ProjectDep,
    session: SessionDep,
    limit: Limit = DEFAULT_LIMIT,
    after: Annotated[
        str | None,
        Query(pattern=CURSOR_PATTERN, description="a model name from the previous page"),
    ] = None,
) -> ModelList:
    rows, has_more, latest, aliases = service.list_models(
        session, project.id, limit=limit, after=after
    )
    data = [ModelRead.of(r, latest.get(r.id), aliases.get(r.id, {})) for r in rows]
    return ModelList(data=data, has_more=has_more)


@router.get("/{name}", response_model=ModelDetail, summary="Get a model and its versions")
def get_model(name: NamePath, project: ProjectDep, session: SessionDep) -> ModelDetail:
    model = service.get_model(session, project.id, name)
    latest = repository.latest_ready_numbers(session, [model.id]).get(model.id)
    aliases = repository.aliases_of(session, [model.id]).get(model.id, {})
    versions = [VersionSummary.of(v) for v in repository.versions_of(session, model.id)]
    return ModelDetail(**ModelRead.of(model, latest, aliases).model_dump(), versions=versions)


@router.get("/{name}/versions/{version}", response_model=VersionRead, summary="Get a model version")
def get_version(
    name: NamePath, version: VersionPath, project: ProjectDep, session: SessionDep
) -> VersionRead:
    return VersionRead.of(*service.get_version(session, project.id, name, version))


@router.get(
    "/{name}/versions/{version}/artifact",
    response_class=Response,
    responses=_ARTIFACT_DOC,
    summary="Download a ready version's artifact: weights, config, tokenizer, ONNX (a zip)",
)
def download_artifact(
    name: NamePath,
    version: VersionPath,
    project: ProjectDep,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    archive = service.artifact_archive(session, storage, project.id, name, version)
    headers = {
        "Content-Length": str(archive.size),
        "Content-Disposition": f'attachment; filename="{name}-v{version}.zip"',
        SHA256_HEADER: archive.sha256,
    }
    return StreamingResponse(_chunks(archive.handle), media_type=ZIP, headers=headers)


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """The open zip, a chunk at a time (never whole in memory); closed however the send ends."""
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


@router.delete(
    "/{name}/versions/{version}",
    response_model=VersionDeleted,
    summary="Delete a model version, its artifact and the aliases that point at it",
)
def delete_version(
    name: NamePath,
    version: VersionPath,
    request: Request,
    project: ProjectDep,
    session: SessionDep,
    storage: StorageDep,
) -> VersionDeleted:
    row, aliases = service.delete_version(session, project.id, name, version)
    uri, version_id = row.artifact_uri, row.id

    def _forget() -> None:
        storage.discard(storage.delete_version, uri)
        forget_archive(storage.cache_dir, version_id)
        forget_model(request, project.id, name)
        _evict(request, version_id)

    after_commit(session, _forget)
    commit(session)
    return VersionDeleted(name=name, version=version, aliases_removed=aliases)


def _evict(request: Request, version_id: str) -> None:
    """Drop the version from this API process's model cache, when there is one."""
    cache: Any = getattr(request.app.state, "model_cache", None)
    evict = getattr(cache, "evict", None)
    if callable(evict):
        try:
            evict(version_id)
        except Exception:  # the deletion has committed; a cache hiccup must not turn it into 500
            log.exception("could not evict a deleted version", extra={"version_id": version_id})


@router.put(
    "/{name}/aliases/{alias}", response_model=AliasRead, summary="Point an alias at a version"
)
def set_alias(
    name: NamePath,
    alias: AliasPath,
    body: AliasSet,
    request: Request,
    project: ProjectDep,
    session: SessionDep,
) -> AliasRead:
    row = service.set_alias(session, project.id, name, alias, body.version)
    commit(session)
    forget_model(request, project.id, name)
    return AliasRead(name=name, alias=alias, version=row.version)


@router.delete("/{name}/aliases/{alias}", response_model=AliasDeleted, summary="Remove an alias")
def delete_alias(
    name: NamePath, alias: AliasPath, request: Request, project: ProjectDep, session: SessionDep
) -> AliasDeleted:
    service.delete_alias(session, project.id, name, alias)
    commit(session)
    forget_model(request, project.id, name)
    return AliasDeleted(name=name, alias=alias)
