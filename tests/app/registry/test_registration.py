"""Registering versions under concurrency, against the real databases (no worker needed)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import ensure_project
from app.db import make_engine, make_session_factory, transaction
from app.errors import Conflict
from app.models import RegisteredModel
from app.registry.registration import NewVersion, mark_ready, model_for_write, reserve_version
from tests.support.stack import Backend


@pytest.fixture
def sessions(backend: Backend) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(backend.settings().sqlalchemy_url, pool_size=10)
    yield make_session_factory(engine)
    engine.dispose()


def _project(sessions: sessionmaker[Session]) -> str:
    with transaction(sessions) as session:
        return ensure_project(session, f"reg-{secrets.token_hex(4)}").id


def _new(project_id: str, job_id: str, name: str = "race", task: str = "text_classification"):
    return NewVersion(
        project_id=project_id, name=name, task=task, job_id=job_id, dataset_id="ds_x",
        backbone="tiny_text", labels=["a", "b"], metrics={"accuracy": 1.0}, manifest={},
        runtime="torch",
    )  # fmt: skip


def _uris(root: Path) -> Callable[[int], str]:
    return lambda number: f"file://{root}/models/race/{number}"


def _register(sessions: sessionmaker[Session], new: NewVersion, root: Path) -> int:
    with transaction(sessions) as session:
        return reserve_version(session, new, _uris(root)).version


def test_concurrent_registrations_get_distinct_consecutive_versions(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    project_id = _project(sessions)
    jobs = [f"job_{secrets.token_hex(6)}" for _ in range(8)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        numbers = list(pool.map(lambda j: _register(sessions, _new(project_id, j), tmp_path), jobs))
    assert sorted(numbers) == list(range(1, 9))
    with sessions() as session:
        models = session.scalars(
            select(RegisteredModel).where(RegisteredModel.project_id == project_id)
        ).all()
    assert [(m.name, m.last_version) for m in models] == [("race", 8)]


def test_a_retried_job_reuses_its_version(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    project_id = _project(sessions)
    new = _new(project_id, f"job_{secrets.token_hex(6)}")
    with transaction(sessions) as session:
        first = reserve_version(session, new, _uris(tmp_path))
        assert first.status == "registering"
        assert first.artifact_uri == f"file://{tmp_path}/models/race/1"
    assert _register(sessions, new, tmp_path) == 1
    with transaction(sessions) as session:
        ready = mark_ready(session, first.id)
        assert ready is not None and ready.status == "ready"
    assert _register(sessions, _new(project_id, f"job_{secrets.token_hex(6)}"), tmp_path) == 2


def test_a_model_keeps_its_task(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    project_id = _project(sessions)
    _register(sessions, _new(project_id, f"job_{secrets.token_hex(6)}"), tmp_path)
    with transaction(sessions) as session, pytest.raises(Conflict) as raised:
        model_for_write(session, project_id, "race", "image_classification")
    assert raised.value.code == "model_task_mismatch"
