"""Fixtures for integration tests: every stack test runs on PostgreSQL + Redis and on the
embedded default (SQLite + filesystem broker), each with a real Celery worker process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth.keys import create_key
from app.db import make_engine, make_session_factory, transaction
from app.main import create_app
from app.migrate import upgrade
from ml.backbones.testing import write_test_catalog
from tests.support.services import fresh_postgres_database, fresh_redis_db
from tests.support.stack import Backend, WorkerProcess

BACKENDS = ["postgres", "embedded"]
# Model hubs are never reachable from tests: the offline code paths are the ones exercised.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# An operator's catalog entry whose weights file is not there (a relative location is taken
# relative to the catalog file): listed, but not available.
MISSING_WEIGHTS_BACKBONE = {
    "id": "missing_weights",
    "library": "timm",
    "modality": "image",
    "arch": "resnet10t",
    "source": "local",
    "location": "no-such-dir/model.safetensors",
    "num_params": 4_900_000,
    "license": "apache-2.0",
    "input_size": 64,
}


@pytest.fixture(scope="session", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    data_dir = tmp_path_factory.mktemp(f"hone-{request.param}")
    with fresh_backend(request.param, data_dir) as backend:
        yield backend


@contextmanager
def fresh_backend(kind: str, data_dir: Path) -> Iterator[Backend]:
    """A migrated, empty backend of `kind` whose catalog also has the tiny test backbones."""
    data_dir.mkdir(parents=True, exist_ok=True)
    catalog = write_test_catalog(data_dir / "test-backbones.json")
    missing = data_dir / "missing-backbones.json"
    missing.write_text(json.dumps([MISSING_WEIGHTS_BACKBONE]))
    env = {"HONE_BACKBONES_FILES": json.dumps([str(catalog), str(missing)])}
    if kind == "embedded":
        backend = Backend("embedded", data_dir, extra_env=env)
        upgrade(backend.settings().sqlalchemy_url)
        yield backend
        return
    with fresh_postgres_database() as db_url, fresh_redis_db() as redis_url:
        backend = Backend(
            "postgres", data_dir, database_url=db_url, broker_url=redis_url, extra_env=env
        )
        upgrade(db_url)
        yield backend


@pytest.fixture(scope="session")
def worker(backend: Backend) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(backend, backend.data_dir / "worker.log").start()
    yield proc
    proc.stop()


@dataclass
class Stack:
    backend: Backend
    client: TestClient
    worker: WorkerProcess
    key_a: str
    key_b: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}"}


@pytest.fixture(scope="session")
def stack(backend: Backend, worker: WorkerProcess) -> Iterator[Stack]:
    engine = make_engine(backend.settings().sqlalchemy_url)
    with transaction(make_session_factory(engine)) as session:
        key_a = create_key(session, "team-a")
        key_b = create_key(session, "team-b")
    engine.dispose()
    app = create_app(backend.settings(upload_wait_seconds=30))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Stack(backend, client, worker, key_a, key_b)


@pytest.fixture
def uploads_dir(tmp_path: Path) -> Path:
    return tmp_path
