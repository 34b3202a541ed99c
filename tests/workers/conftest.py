"""The worker's database logic against the real registries; jobs are plain rows.

Each module gets its own empty database: the shared one has a live worker whose reaper would
pick up these hand-made rows."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import ensure_project
from app.db import make_engine, make_session_factory, transaction
from app.models import Job
from tests.conftest import fresh_backend
from tests.support.stack import Backend

MakeJob = Callable[..., str]


@pytest.fixture(scope="module")
def database(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with fresh_backend(backend.name, tmp_path_factory.mktemp("workers")) as fresh:
        yield fresh


@pytest.fixture
def sessions(database: Backend) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database.settings().sqlalchemy_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def make_job(sessions: sessionmaker[Session]) -> MakeJob:
    """Insert a job row with the given column values; returns its id."""
    with transaction(sessions) as session:
        project_id = ensure_project(session, f"workers-{secrets.token_hex(4)}").id

    def make(**values: Any) -> str:
        with transaction(sessions) as session:
            row = Job(project_id=project_id, dataset_id="ds_x", backbone="tiny_text",
                      model_name="m", **values)  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

    return make


def load(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        row = session.get(Job, job_id)
        assert row is not None
        return row
