"""Migrations run on PostgreSQL and SQLite, reverse cleanly, and match the ORM models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.config import get_settings
from app.db import make_engine, make_session_factory
from app.errors import Conflict
from app.migrate import downgrade, upgrade
from app.models import Base, ModelVersion
from app.registry.service import resolve_version
from app.registry.states import READY, REGISTERING
from app.storage.places import Storage
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


def test_an_install_from_before_the_storage_seam_keeps_its_versions_and_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data directory written by an earlier Hone: bare artifact paths, directories without
    listings. After `hone migrate` the version is readable through the store, and so is the
    dataset."""
    monkeypatch.setenv("HONE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    url = f"sqlite:///{tmp_path / 'hone.db'}"
    upgrade(url, "0004")
    artifact = tmp_path / "models" / "p1" / "old" / "1"
    artifact.mkdir(parents=True)
    (artifact / "model.safetensors").write_bytes(b"weights")
    (artifact / "config.json").write_text("{}")
    sha = "a" * 64
    (tmp_path / "datasets" / sha / "files").mkdir(parents=True)
    (tmp_path / "datasets" / sha / "manifest.json").write_text("{}")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO projects (id, name, created_at) VALUES ('p1', 'p', CURRENT_TIMESTAMP)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO models (id, project_id, name, task, last_version, created_at) "
            "VALUES ('m1', 'p1', 'old', 'image_classification', 1, CURRENT_TIMESTAMP)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO model_versions (id, model_id, version, status, task, labels, backbone, "
            "metrics, manifest, runtime, artifact_uri, created_at) VALUES ('v1', 'm1', 1, "
            f"'ready', 'image_classification', '[]', 'b', '{{}}', '{{}}', 'torch', '{artifact}', "
            "CURRENT_TIMESTAMP)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO datasets (id, project_id, name, task, multilabel, status, sha256, "
            "labels, options, label_counts, num_examples, attempts, created_at) VALUES ('d1', "
            f"'p1', 'd', 'image_classification', 0, 'ready', '{sha}', '[]', '{{}}', '{{}}', 0, "
            "1, CURRENT_TIMESTAMP)"
        ))  # fmt: skip
    try:
        upgrade(url)
        with engine.connect() as conn:
            uri = conn.execute(text("SELECT artifact_uri FROM model_versions")).scalar_one()
        assert uri == f"file://{artifact}"
        storage = Storage.from_settings(get_settings())
        assert (storage.version_dir(uri) / "model.safetensors").read_bytes() == b"weights"
        assert (storage.dataset_dir(sha) / "manifest.json").is_file()
    finally:
        engine.dispose()
        get_settings.cache_clear()
