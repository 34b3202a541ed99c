"""The rules of the registry: finding models and versions, aliases, deleting, and which version
a prediction request means (`resolve_version`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import ModelAlias, ModelVersion, RegisteredModel
from app.registry import repository
from app.registry.archive import Archive, open_archive
from app.registry.states import READY, REGISTERING
from app.storage.errors import StoreMissing
from app.storage.places import Storage

DEFAULT_ALIAS = "production"


def get_model(session: Session, project_id: str, name: str) -> RegisteredModel:
    model = repository.get_model(session, project_id, name)
    if model is None:
        raise NotFound(f"No model named {name!r} in this project.", code="model_not_found")
    return model


def get_version(
    session: Session, project_id: str, name: str, version: int
) -> tuple[RegisteredModel, ModelVersion]:
    model = get_model(session, project_id, name)
    row = repository.get_version(session, model.id, version)
    if row is None:
        raise NotFound(
            f"Model {name!r} has no version {version}.",
            code="version_not_found",
        )
    return model, row


def _require_ready(name: str, row: ModelVersion) -> ModelVersion:
    if row.status != READY:
        raise Conflict(
            f"Version {row.version} of model {name!r} is {row.status}, not ready.",
            code="version_not_ready",
        )
    return row


def resolve_version(
    session: Session, project_id: str, name: str, *, version: int | None, alias: str | None
) -> tuple[RegisteredModel, ModelVersion]:
    """The version a request means: `version`, else `alias`, else the `production` alias if
    set, else the newest ready version. NotFound for an unknown model, version or alias;
    Conflict when the named version is not ready or the model has no ready version."""
    model = get_model(session, project_id, name)
    if version is None:
        chosen = alias
        if chosen is None and repository.get_alias(session, model.id, DEFAULT_ALIAS):
            chosen = DEFAULT_ALIAS
        if chosen is not None:
            row = repository.get_alias(session, model.id, chosen)
            if row is None:
                raise NotFound(f"Model {name!r} has no alias {chosen!r}.", code="alias_not_found")
            version = row.version
    if version is not None:
        return model, _require_ready(name, get_version(session, project_id, name, version)[1])
    latest = repository.latest_ready(session, model.id)
    if latest is None:
        raise Conflict(
            f"Model {name!r} has no ready version yet; wait for its training job to finish.",
            code="no_ready_version",
        )
    return model, latest


def artifact_archive(
    session: Session, storage: Storage, project_id: str, name: str, version: int
) -> Archive:
    """The zip of a ready version's artifact (app/registry/archive.py), built on first ask.

    NotFound also when the artifact is gone from the store: only a deletion that has just
    committed removes it. A file the local cache lost while the zip was built is fetched again,
    once.
    """
    _, row = get_version(session, project_id, name, version)
    _require_ready(name, row)
    for attempt in range(2):
        try:
            return open_archive(storage.cache_dir, row.id, storage.version_dir(row.artifact_uri))
        except StoreMissing:
            break
        except FileNotFoundError:
            if attempt:
                break
    raise NotFound(f"Version {version} of model {name!r} was deleted.", code="version_not_found")


def list_models(
    session: Session, project_id: str, *, limit: int, after: str | None
) -> tuple[Sequence[RegisteredModel], bool, dict[str, int], dict[str, dict[str, int]]]:
    """(models, has_more, latest ready version by model id, aliases by model id)."""
    rows, has_more = repository.list_models_page(session, project_id, limit=limit, after=after)
    ids = [row.id for row in rows]
    latest = repository.latest_ready_numbers(session, ids)
    return rows, has_more, latest, repository.aliases_of(session, ids)


def set_alias(session: Session, project_id: str, name: str, alias: str, version: int) -> ModelAlias:
    model, row = get_version(session, project_id, name, version)
    _require_ready(name, row)
    existing = repository.get_alias(session, model.id, alias)
    if existing is None:
        existing = ModelAlias(model_id=model.id, alias=alias, version=version)
        session.add(existing)
    existing.version = version
    session.flush()
    return existing


def delete_alias(session: Session, project_id: str, name: str, alias: str) -> None:
    model = get_model(session, project_id, name)
    row = repository.get_alias(session, model.id, alias)
    if row is None:
        raise NotFound(f"Model {name!r} has no alias {alias!r}.", code="alias_not_found")
    session.delete(row)
    session.flush()


def delete_version(
    session: Session, project_id: str, name: str, version: int
) -> tuple[ModelVersion, list[str]]:
    """Delete the version row and the aliases that point at it; (row, aliases removed).

    The caller removes the artifact once the deletion has committed. A version still being
    registered belongs to its job until it is ready.
    """
    model, row = get_version(session, project_id, name, version)
    if row.status == REGISTERING:
        raise Conflict(
            f"Version {version} of model {name!r} is still being registered; try again shortly.",
            code="version_not_ready",
        )
    aliases = sorted(
        alias
        for alias, v in repository.aliases_of(session, [model.id]).get(model.id, {}).items()
        if v == version
    )
    repository.delete_aliases_to(session, model.id, version)
    session.delete(row)
    session.flush()
    return row, aliases
