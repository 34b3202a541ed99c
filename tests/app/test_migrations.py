"""Migrations run on PostgreSQL and SQLite, reverse cleanly, and match the ORM models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.db import make_engine
from app.migrate import downgrade, upgrade
from app.models import Base
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
