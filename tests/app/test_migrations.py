"""Migrations run on PostgreSQL and SQLite, reverse cleanly, and match the ORM models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db import make_engine, make_session_factory
from app.errors import Conflict
from app.migrate import downgrade, upgrade
from app.models import Base, ModelVersion
from app.registry.service import resolve_version
from app.registry.states import READY, REGISTERING
from tests.support.services import fresh_postgres_database


@pytest.fixture(params=["postgres", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_downgrade_upgrade_matches_models(empty_database: str) -> None:
    url = empty_database
    upgrade(url)
    assert set(Base.metadata.tables) <= _tables(url)
    assert _schema_diff(url) == []
    downgrade(url)
    assert _tables(url) <= {"alembic_version"}
    upgrade(url)
    assert _schema_diff(url) == []


def test_a_version_written_without_a_status_is_not_servable(empty_database: str) -> None:
    """Only mark_ready makes a version servable: the column defaults to `registering`, in the
    database (a row inserted by hand or by another tool) as in the ORM."""
    url = empty_database
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO projects (id, name, created_at) VALUES ('p1', 'p', :t)"),
            {"t": "2026-12-01"},
        )
        conn.execute(
            text(
                "INSERT INTO models (id, project_id, name, task, last_version, created_at) "
                "VALUES ('m1', 'p1', 'tickets', 'text_classification', 1, :t)"
            ),
            {"t": "2026-12-01"},
        )
        conn.execute(
            text(
                "INSERT INTO model_versions (id, model_id, version, task, labels, backbone, "
                "metrics, manifest, runtime, artifact_uri, created_at) VALUES ('v1', 'm1', 1, "
                "'text_classification', '[]', 'b', '{}', '{}', 'torch', '/nowhere', :t)"
            ),
            {"t": "2026-12-01"},
        )
        assert conn.execute(text("SELECT status FROM model_versions")).scalar() == REGISTERING
    with make_session_factory(engine)() as session:
        with pytest.raises(Conflict):
            resolve_version(session, "p1", "tickets", version=None, alias=None)
        with pytest.raises(Conflict):
            resolve_version(session, "p1", "tickets", version=1, alias=None)
        orm_row = ModelVersion(model_id="m1", version=2, task="t", backbone="b", artifact_uri="x")
        session.add(orm_row)
        session.flush()
        assert orm_row.status == REGISTERING != READY
    engine.dispose()
