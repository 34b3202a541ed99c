"""A broker outage during an upload: the API answers 503 with Retry-After (never 500), keeps
the dataset, and a data worker's reaper sends it once the broker is back; it is processed once.

Everything is real and separate: a private redis-server the test stops and starts again on
the same port, the API and a `data` worker as subprocesses, a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.auth.keys import create_key
from app.db import make_engine, make_session_factory, transaction
from app.migrate import upgrade
from app.models import Dataset
from tests.factories.uploads import tweets_csv
from tests.support.api_process import ApiProcess
from tests.support.redis_server import RedisServer
from tests.support.services import fresh_postgres_database
from tests.support.stack import Backend, WorkerProcess, wait_until
from tests.support.storage import leftover_uploads

pytestmark = pytest.mark.timeout(120)
BOUNDARY = "hone-outage-test"


@dataclass
class Outage:
    backend: Backend
    redis: RedisServer
    api: ApiProcess
    worker: WorkerProcess
    key: str

    def rows(self) -> list[Dataset]:
        engine = make_engine(self.backend.settings().sqlalchemy_url)
        try:
            with make_session_factory(engine)() as session:
                return list(session.scalars(select(Dataset).order_by(Dataset.id)))
        finally:
            engine.dispose()

    def get(self, dataset_id: str) -> dict:
        resp = httpx.get(
            f"{self.api.url}/v1/datasets/{dataset_id}", headers=self.auth(), timeout=10
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    with fresh_postgres_database() as db_url:
        upgrade(db_url)
        engine = make_engine(db_url)
        with transaction(make_session_factory(engine)) as session:
            key = create_key(session, "outage")
        engine.dispose()
        redis = RedisServer(tmp_path / "redis.log").start()
        # A short lease: the reaper passes every 2 s, so recovery is quick to observe.
        backend = Backend("postgres", tmp_path / "data", database_url=db_url,
                          broker_url=redis.url, extra_env={"HONE_LEASE_SECONDS": "2"})  # fmt: skip
        worker = WorkerProcess(backend, tmp_path / "worker.log", queues="data")
        api = ApiProcess(backend, tmp_path / "api.log")
        try:
            with ThreadPoolExecutor(2) as pool:  # both start-ups at once: most of the setup
                for started in [pool.submit(worker.start), pool.submit(api.start)]:
                    started.result()
            yield Outage(backend, redis, api, worker, key)
        finally:
            api.stop()
            worker.stop()
            redis.stop()


def _multipart(name: str) -> tuple[bytes, bytes]:
    """The body of a dataset upload, split before and after the file's bytes."""
    head = "".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'
        for field, value in (("task", "text_classification"), ("name", name))
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="tweets.csv"\r\nContent-Type: text/csv\r\n\r\n'
    )
    return head.encode(), f"\r\n--{BOUNDARY}--\r\n".encode()


def _post(
    outage: Outage,
    name: str,
    upload: bytes,
    key: str | None,
    mid_upload: Callable[[], None] | None = None,
) -> httpx.Response:
    """POST /v1/datasets, streaming the body; `mid_upload` runs halfway through the file."""
    head, tail = _multipart(name)

    def body() -> Iterator[bytes]:
        yield head
        yield upload[: len(upload) // 2]
        if mid_upload is not None:
            mid_upload()
        yield upload[len(upload) // 2 :]
        yield tail

    headers = outage.auth(**{"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    if key:
        headers["Idempotency-Key"] = key
    return httpx.post(f"{outage.api.url}/v1/datasets", content=body(), headers=headers, timeout=60)


def _finished(outage: Outage, dataset_id: str) -> dict | None:
    dataset = outage.get(dataset_id)
    return None if dataset["status"] == "processing" else dataset


def _ready_lines(outage: Outage, dataset_id: str) -> int:
    """How many times a worker finished processing the dataset, from its JSON log."""
    count = 0
    for line in outage.worker.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "dataset ready" and entry.get("dataset_id") == dataset_id:
            count += 1
    return count


def test_an_upload_during_a_broker_outage_gets_503_and_is_processed_once(
    outage: Outage, tmp_path: Path
) -> None:
    csv = tmp_path / "tweets.csv"
    tweets_csv(csv, 30)
    upload = csv.read_bytes()

    # The broker works: the API's and the worker's connections to it are established.
    warm = _post(outage, "warm-up", upload, key=None)
    assert warm.status_code in (201, 202), warm.text
    warm_id = warm.json()["id"]
    wait_until(lambda: outage.get(warm_id)["status"] == "ready", timeout=30, what="warm-up ready")

    started = time.monotonic()
    resp = _post(outage, "outage", upload, key="outage-1", mid_upload=outage.redis.stop)
    assert time.monotonic() - started < 10  # the failed send is bounded, not retried for long
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert int(resp.headers["Retry-After"]) > 0
    problem = resp.json()
    dataset_id = problem["dataset_id"]
    assert problem["code"] == "broker_unavailable" and problem["status"] == 503
    assert dataset_id in problem["detail"] and "Idempotency-Key" in problem["detail"]
    assert outage.get(dataset_id)["status"] == "processing"  # stored, waiting for the broker
    ready = httpx.get(f"{outage.api.url}/readyz", timeout=10)
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]  # names the part that is down, and only that one
    assert checks["broker"].startswith("unavailable"), checks
    assert checks["database"] == "ok" and checks["storage"] == "ok"
    # The worker's reaper tries to send it while the broker is down, and marks it unsent again.
    wait_until(lambda: "broker unavailable" in outage.worker.log(), timeout=20,
               what="a reaper pass during the outage")  # fmt: skip

    outage.redis.start()  # the same port: the same broker URL, now empty
    done = wait_until(
        lambda: _finished(outage, dataset_id),
        timeout=60,
        what=f"dataset {dataset_id} processed after the broker came back",
    )
    assert done["status"] == "ready", done["error"]
    assert done["num_examples"] == 30
    assert httpx.get(f"{outage.api.url}/readyz", timeout=10).status_code == 200

    rows = outage.rows()
    assert [r.id for r in rows] == sorted([warm_id, dataset_id])  # no second row
    row = next(r for r in rows if r.id == dataset_id)
    assert row.attempts == 1 and row.lease_owner is None and row.enqueued_at is not None
    assert _ready_lines(outage, dataset_id) == 1
    assert leftover_uploads(outage.backend) == []

    again = _post(outage, "outage", upload, key="outage-1")
    assert again.status_code == 201, again.text
    assert again.json()["id"] == dataset_id and again.json()["status"] == "ready"
    assert len(outage.rows()) == 2
