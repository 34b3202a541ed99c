"""Each shared part can fail and come back: with PostgreSQL or the object store unreachable,
requests that need it answer 503 problem+json with Retry-After (never 500), /readyz names the
part, and once it is back requests succeed again with nothing restarted.

Everything is real: PostgreSQL behind a TCP proxy the tests cut and restore, backends killed
with pg_terminate_backend, Redis, and a moto S3 server the tests pause (SIGSTOP) and resume.
The API runs in process (TestClient, which re-raises anything unhandled: no hidden 500s).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from app.auth.keys import authenticate, create_key
from app.db import make_session_factory, transaction
from app.errors import OUTAGE_RETRY_AFTER_SECONDS, outage
from app.main import create_app
from app.migrate import upgrade
from app.models import Dataset, Job
from app.ops.endpoints import PROBE_TIMEOUT_SECONDS
from tests.factories.uploads import tweets_csv
from tests.support.s3_server import CREDENTIALS, S3Server
from tests.support.services import fresh_postgres_database, fresh_redis_db
from tests.support.stack import Backend, wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(90)
# /readyz waits at most PROBE_TIMEOUT_SECONDS for its slowest part; this leaves room for CI.
READYZ_BOUND = PROBE_TIMEOUT_SECONDS + 3
# A store call gives up after about 10 s (app/storage/store.py S3_CONFIG); an upload makes one.
STORE_BOUND = 30


@dataclass
class Outages:
    backend: Backend
    proxy: TcpProxy  # in front of the PostgreSQL server the app's database URL names
    direct: Engine  # the same database, not through the proxy
    client: TestClient
    key_a: str
    key_b: str

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}", **extra}

    def terminate_backends(self) -> int:
        """pg_terminate_backend every connection to the test database but the caller's."""
        name = self.direct.url.database
        with self.direct.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            ).scalar_one()
        return int(killed)


@pytest.fixture(scope="module")
def outages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outages]:
    data_dir = tmp_path_factory.mktemp("outages")
    with fresh_postgres_database() as db_url, fresh_redis_db() as redis_url:
        upgrade(db_url)
        direct = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with transaction(make_session_factory(direct)) as session:
            key_a, key_b = create_key(session, "team-a"), create_key(session, "team-b")
        with TcpProxy.for_url(db_url) as proxy:
            backend = Backend(
                "postgres", data_dir, database_url=proxy.url(db_url), broker_url=redis_url
            )
            app = create_app(backend.settings(upload_wait_seconds=0))
            try:
                with TestClient(app) as client:
                    yield Outages(backend, proxy, direct, client, key_a, key_b)
            finally:
                direct.dispose()


@pytest.fixture
def db(outages: Outages) -> Iterator[Outages]:
    """The module's stack, with the database reachable again after each test."""
    yield outages
    outages.proxy.restore()


def _assert_unavailable(resp: Response, code: str) -> dict:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert int(resp.headers["Retry-After"]) > 0
    problem = resp.json()
    assert problem["status"] == 503 and problem["code"] == code, problem
    assert "retry" in problem["detail"].lower()
    return problem


def _readyz(client: TestClient) -> tuple[Response, float]:
    started = time.monotonic()
    resp = client.get("/readyz")
    return resp, time.monotonic() - started


def test_database_cut_gives_503_and_requests_recover_once_it_is_back(db: Outages) -> None:
    client = db.client
    assert client.get("/v1/datasets", headers=db.headers()).status_code == 200  # key_a cached
    ready, _ = _readyz(client)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}

    db.proxy.cut()
    # key_a is remembered (app/ttl_cache.py): the endpoint's own query is what fails.
    problem = _assert_unavailable(
        client.get("/v1/datasets", headers=db.headers()), "database_unavailable"
    )
    assert "database" in problem["detail"]
    assert "127.0.0.1" not in problem["detail"]  # the cause is logged, not sent
    # key_b is not: the lookup in the authentication dependency fails, the same way.
    _assert_unavailable(
        client.get("/v1/datasets", headers=db.headers(db.key_b)), "database_unavailable"
    )
    _assert_unavailable(
        client.get("/v1/jobs/job_0123456789abcdef/events", headers=db.headers()),
        "database_unavailable",
    )
    ready, took = _readyz(client)
    assert took < READYZ_BOUND
    assert ready.status_code == 503, ready.text
    checks = ready.json()["checks"]
    assert checks["database"].startswith("unavailable: OperationalError"), checks
    assert checks["broker"] == "ok" and checks["storage"] == "ok"
    metrics = client.get("/metrics").text
    assert 'route="/v1/datasets",status="503"' in metrics
    assert 'status="500"' not in metrics

    db.proxy.restore()
    for key in (db.key_a, db.key_b):  # no restart: the pool opens new connections by itself
        resp = client.get("/v1/datasets", headers=db.headers(key))
        assert resp.status_code == 200, resp.text
    assert client.get("/readyz").status_code == 200


def test_terminated_backends_are_replaced_before_the_next_request(db: Outages) -> None:
    client = db.client
    for key in (db.key_a, db.key_b):
        assert client.get("/v1/datasets", headers=db.headers(key)).status_code == 200
    assert db.terminate_backends() >= 1  # the app's pooled, idle connections
    # pool_pre_ping (app/db.py) finds each dead connection at checkout and replaces it.
    for _ in range(3):
        resp = client.get("/v1/datasets", headers=db.headers(db.key_b))
        assert resp.status_code == 200, resp.text
    assert client.get("/readyz").status_code == 200


def test_terminating_backends_under_load_never_gives_500(db: Outages) -> None:
    stop = threading.Event()

    def terminate_repeatedly() -> int:  # some requests are mid-query when their backend dies
        passes = 0
        while not stop.is_set():
            db.terminate_backends()
            passes += 1
        return passes

    statuses = []
    with ThreadPoolExecutor(1) as pool:
        terminator = pool.submit(terminate_repeatedly)
        try:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                resp = db.client.get("/v1/datasets", headers=db.headers(db.key_b))
                statuses.append(resp.status_code)
                if resp.status_code == 503:
                    assert resp.json()["code"] == "database_unavailable"
        finally:
            stop.set()
        assert terminator.result(timeout=10) > 0
    assert statuses and set(statuses) <= {200, 503}, statuses
    assert db.client.get("/v1/datasets", headers=db.headers()).status_code == 200
    assert db.client.get("/readyz").status_code == 200


def test_a_job_event_stream_ends_with_an_unavailable_event_when_the_database_goes(
    db: Outages,
) -> None:
    with make_session_factory(db.direct)() as session:
        project = authenticate(session, db.key_a)
        assert project is not None
        job = Job(project_id=project.id, dataset_id="ds_x", backbone="b", model_name="m")
        session.add(job)
        session.commit()
        job_id = job.id

    path = f"/v1/jobs/{job_id}/events"
    sse = db.headers(Accept="text/event-stream")
    with db.client.stream("GET", path, headers=sse) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines) == ": stream of job events"
        db.proxy.cut()  # while the stream polls the job's events
        rest = "\n".join(lines)  # ends by itself: neither a hang nor a broken connection
    frame = rest.strip().split("\n\n")[-1].splitlines()
    assert frame[:2] == ["retry: 5000", "event: unavailable"], rest
    problem = json.loads(frame[2].removeprefix("data: "))
    assert problem["status"] == 503 and problem["code"] == "database_unavailable"

    db.proxy.restore()
    with db.client.stream("GET", path, headers=sse) as resp:  # reconnecting works again
        assert resp.status_code == 200
        assert next(resp.iter_lines()) == ": stream of job events"


def test_sqlite_database_is_locked_is_a_503_too() -> None:
    locked = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
    problem = outage(locked)
    assert problem is not None and problem.status == 503
    assert problem.code == "database_unavailable" and "busy" in problem.detail
    assert problem.headers == {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
    assert outage(ValueError("a bug")) is None  # anything else stays what it is


# ---- the object store ----------------------------------------------------------------------


@pytest.fixture
def s3_app(outages: Outages, tmp_path: Path) -> Iterator[tuple[TestClient, S3Server]]:
    server = S3Server(tmp_path / "s3.log").start()
    try:
        bucket = server.create_bucket()
        settings = outages.backend.settings(
            upload_wait_seconds=0, storage_url=bucket, s3_endpoint_url=server.endpoint_url
        )
        with pytest.MonkeyPatch.context() as env:
            for name, value in CREDENTIALS.items():
                env.setenv(name, value)
            with TestClient(create_app(settings)) as client:
                yield client, server
    finally:
        server.stop()


def _upload(client: TestClient, headers: dict[str, str], csv: Path) -> Response:
    return client.post(
        "/v1/datasets",
        headers=headers,
        data={"task": "text_classification", "name": "during-outage"},
        files={"file": ("tweets.csv", csv.read_bytes(), "text/csv")},
    )


def _dataset_rows(outages: Outages) -> int:
    with make_session_factory(outages.direct)() as session:
        return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)


def test_an_upload_while_the_store_hangs_gets_503_and_leaves_nothing(
    outages: Outages, s3_app: tuple[TestClient, S3Server], tmp_path: Path
) -> None:
    client, server = s3_app
    csv = tmp_path / "tweets.csv"
    tweets_csv(csv, 30)
    warm = _upload(client, outages.headers(), csv)  # the store's connections are established
    assert warm.status_code in (201, 202), warm.text
    listed = client.get("/v1/datasets", headers=outages.headers()).json()["data"]
    rows = _dataset_rows(outages)

    server.pause()
    try:
        headers = outages.headers(**{"Idempotency-Key": "store-outage-1"})
        with ThreadPoolExecutor(1) as pool:  # a request the store never bounds must not hang
            pending = pool.submit(_upload, client, headers, csv)
            try:
                resp = pending.result(timeout=STORE_BOUND)
            except FutureTimeout:
                server.resume()  # lets it finish, so the app can shut down
                pending.result(timeout=60)
                pytest.fail(f"an upload to a hung store had no answer within {STORE_BOUND} s")
        problem = _assert_unavailable(resp, "storage_unavailable")
        assert "object store" in problem["detail"]
        assert client.get("/v1/datasets", headers=outages.headers()).json()["data"] == listed
        assert _dataset_rows(outages) == rows

        ready, took = _readyz(client)
        assert took < READYZ_BOUND
        assert ready.status_code == 503, ready.text
        checks = ready.json()["checks"]
        assert checks["storage"].startswith("unavailable"), checks
        assert checks["database"] == "ok" and checks["broker"] == "ok"
    finally:
        server.resume()

    again = _upload(client, headers, csv)  # the same request, once the store answers again
    assert again.status_code in (201, 202), again.text
    assert again.json()["id"] != warm.json()["id"]
    assert _dataset_rows(outages) == rows + 1
    wait_until(
        lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz ready again"
    )
