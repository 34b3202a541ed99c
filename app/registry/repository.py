"""All SQL of the model registry. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import ModelAlias, ModelVersion, RegisteredModel
from app.pagination import page
from app.registry.states import READY


def get_model(session: Session, project_id: str, name: str) -> RegisteredModel | None:
    return session.scalar(
        select(RegisteredModel).where(
            RegisteredModel.project_id == project_id, RegisteredModel.name == name
        )
    )


def list_models_page(
    session: Session, project_id: str, *, limit: int, after: str | None
) -> tuple[Sequence[RegisteredModel], bool]:
    """Newest first; `after` is a model name (models are addressed by name, not id)."""
    after_id = None
    if after:
        cursor = get_model(session, project_id, after)
        # An unknown cursor pages from the start rather than failing a list request.
        after_id = cursor.id if cursor else None
    stmt = select(RegisteredModel).where(RegisteredModel.project_id == project_id)
    return page(session, stmt, RegisteredModel.id, limit=limit, after=after_id)


def insert_model(session: Session, project_id: str, name: str, task: str) -> RegisteredModel:
    """The project's model of this name, created if missing; safe against a concurrent insert.

    INSERT ... ON CONFLICT DO NOTHING (PostgreSQL and SQLite) instead of catching the
    IntegrityError in a savepoint: pysqlite's savepoints can commit the outer transaction.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RegisteredModel)
        .values(project_id=project_id, name=name, task=task)
        .on_conflict_do_nothing(index_elements=["project_id", "name"])
    )
    row = get_model(session, project_id, name)
    assert row is not None
    return row


def next_version(session: Session, model_id: str) -> int:
    """Allocate the model's next version number.

    The UPDATE takes the row's write lock (PostgreSQL) or the database's (SQLite) until the
    transaction ends, so concurrent allocators are serialised and never read the same value.
    """
    session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == model_id)
        .values(last_version=RegisteredModel.last_version + 1)
        .execution_options(synchronize_session=False)
    )
    number = session.scalar(
        select(RegisteredModel.last_version).where(RegisteredModel.id == model_id)
    )
    assert number is not None
    return int(number)


def versions_of(session: Session, model_id: str) -> Sequence[ModelVersion]:
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(ModelVersion.version.desc())
    ).all()


def get_version(session: Session, model_id: str, version: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.model_id == model_id, ModelVersion.version == version
        )
    )


def version_for_job(session: Session, job_id: str) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))


def latest_ready(session: Session, model_id: str) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id, ModelVersion.status == READY)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )


def latest_ready_numbers(session: Session, model_ids: Iterable[str]) -> dict[str, int]:
    stmt = (
        select(ModelVersion.model_id, func.max(ModelVersion.version))
        .where(ModelVersion.model_id.in_(list(model_ids)), ModelVersion.status == READY)
        .group_by(ModelVersion.model_id)
    )
    return {model_id: int(number) for model_id, number in session.execute(stmt)}


def aliases_of(session: Session, model_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    stmt = (
        select(ModelAlias)
        .where(ModelAlias.model_id.in_(list(model_ids)))
        .order_by(ModelAlias.alias)
    )
    found: dict[str, dict[str, int]] = {}
    for row in session.scalars(stmt):
        found.setdefault(row.model_id, {})[row.alias] = row.version
    return found


def get_alias(session: Session, model_id: str, alias: str) -> ModelAlias | None:
    return session.get(ModelAlias, (model_id, alias))


def delete_aliases_to(session: Session, model_id: str, version: int) -> None:
    session.execute(
        delete(ModelAlias)
        .where(ModelAlias.model_id == model_id, ModelAlias.version == version)
        .execution_options(synchronize_session=False)
    )


def version_refs(session: Session, version_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
    """{version id: (model name, version number)} for the ids that still exist."""
    ids = [i for i in version_ids if i]
    if not ids:
        return {}
    stmt = (
        select(ModelVersion.id, RegisteredModel.name, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.id.in_(ids))
    )
    return {vid: (name, number) for vid, name, number in session.execute(stmt)}
