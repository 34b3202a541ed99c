"""Each shared part goes away and comes back while work is in flight: the test's own Redis
(stopped and started again empty), its own PostgreSQL database (the connection cut at a TCP
proxy and its backends terminated), and its own S3 server (paused, then resumed). Whichever
it is, while a job trains or while an upload is processed: the API never answers 500, nothing
is lost, nothing is done twice, and the work finishes once the part is back.

One stack serves every scenario: the API and one `train,data` worker as subprocesses, each
with its own data and cache directories, sharing only the three parts.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import Engine, create_engine, select, text

from app.auth.keys import create_key
from app.db import make_session_factory, transaction
from app.migrate import upgrade
from app.models import Dataset, Job
from ml.backbones.testing import TINY_IMAGE_ID, write_test_catalog
from tests.app.jobs.flows import auth
from tests.factories.uploads import digits_zip
from tests.support.api_process import ApiProcess
from tests.support.redis_server import RedisServer
from tests.support.s3_server import S3Server
from tests.support.services import fresh_postgres_database
from tests.support.stack import Backend, WorkerProcess, wait_until
from tests.support.storage import leftover_uploads
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(300)
PARTS = ["redis", "postgres", "s3"]
OUTAGE_CODES = {"database_unavailable", "storage_unavailable", "broker_unavailable"}
# Long enough that each part can be taken away and brought back while it trains.
FAULT_JOB: dict[str, Any] = {
    "backbone": TINY_IMAGE_ID,
    "method": "full",
    "hyperparameters": {"epochs": 20, "batch_size": 4, "patience": 20, "image_size": 32},
}

# Keeps the worker busy for a few seconds, so an upload's message waits in the broker.
BLOCKER_JOB: dict[str, Any] = {
    **FAULT_JOB, "hyperparameters": {**FAULT_JOB["hyperparameters"], "epochs": 8}
}  # fmt: skip


@dataclass
class Seen:
    """Every answer the API gave the test: no 500 may be among them."""

    answers: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    def record(self, resp: httpx.Response) -> None:
        resp.read()
        code = None
        if resp.status_code >= 400 and resp.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            code = resp.json().get("code")
        self.answers.append((resp.request.method, resp.request.url.path, resp.status_code, code))

    def bad(self) -> list[tuple[str, str, int, str | None]]:
        """Answers that a user must never see: any 5xx but a 503 naming the part that is down
        (a problem with an outage code, or /readyz, whose checks name it)."""
        return [
            a for a in self.answers
            if a[2] >= 500 and not (a[2] == 503 and (a[3] in OUTAGE_CODES or a[1] == "/readyz"))
        ]  # fmt: skip


@dataclass
class Stack:
    folder: Path
    s3: S3Server
    redis: RedisServer
    proxy: TcpProxy  # in front of PostgreSQL: the API's and the worker's only way to it
    direct: Engine  # the same database, not through the proxy: the test's own view
    api_host: Backend
    worker_host: Backend
    key: str
    api: ApiProcess
    worker: WorkerProcess
    seen: Seen
    client: httpx.Client
    dataset_id: str = ""  # a ready dataset the jobs train on

    def get(self, path: str) -> dict[str, Any] | None:
        """The JSON of GET `path`, or None while the API answers 503 for a part that is down."""
        resp = self.client.get(path, headers=auth(self.key))
        if resp.status_code == 503:
            return None
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def ready_checks(self) -> dict[str, str]:
        resp = self.client.get("/readyz")
        assert resp.status_code in (200, 503), resp.text
        checks: dict[str, str] = resp.json()["checks"]
        return checks

    def part_is_down(self, part: str) -> bool:
        name = {"redis": "broker", "postgres": "database", "s3": "storage"}[part]
        return self.ready_checks()[name].startswith("unavailable")

    def worker_log(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.worker.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def terminate_backends(self) -> int:
        """pg_terminate_backend every connection to the test database but the test's own."""
        with self.direct.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.direct.url.database},
            ).scalar_one()
        return int(killed)

    def row(self, model: type[Any], row_id: str) -> Any:
        with make_session_factory(self.direct)() as session:
            return session.get(model, row_id)


def _host(folder: Path, name: str, env: dict[str, str], **urls: str) -> Backend:
    home = folder / name
    home.mkdir()
    catalog = write_test_catalog(home / "backbones.json")
    return Backend(
        name,
        home / "data",
        **urls,
        extra_env={
            **env,
            "HONE_CACHE_DIR": str(home / "cache"),
            "HONE_BACKBONES_FILES": json.dumps([str(catalog)]),
        },
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("faults")
    s3 = S3Server(folder / "s3.log").start()
    redis = RedisServer(folder / "redis.log").start()
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in s3.env().items():  # the test reads the bucket too
                monkeypatch.setenv(name, value)
            yield from _stack(folder, s3, redis)
    finally:
        redis.stop()
        s3.stop()


def _stack(folder: Path, s3: S3Server, redis: RedisServer) -> Iterator[Stack]:
    """The database, the API and the worker, around the running S3 and Redis servers."""
    with fresh_postgres_database() as db_url, TcpProxy.for_url(db_url) as proxy:
        upgrade(db_url)
        direct = create_engine(db_url, isolation_level="AUTOCOMMIT")
        with transaction(make_session_factory(direct)) as session:
            key = create_key(session, "faults")
        env = {**s3.env(), "HONE_STORAGE_URL": f"{s3.create_bucket('hone-faults')}/faults"}
        urls = {"database_url": proxy.url(db_url), "broker_url": redis.url}
        api_host = _host(folder, "api", env, **urls)
        worker_host = _host(folder, "worker", env, **urls)
        # The upload answers 202 as soon as it is stored and sent: the test acts at once.
        api = ApiProcess(api_host, folder / "api.log", HONE_UPLOAD_WAIT_SECONDS="0")
        worker = WorkerProcess(worker_host, folder / "worker.log", queues="train,data")
        seen = Seen()
        try:
            with ThreadPoolExecutor(2) as pool:  # both start-ups at once
                for started in [pool.submit(worker.start), pool.submit(api.start)]:
                    started.result()
            client = httpx.Client(
                base_url=api.url, timeout=60, event_hooks={"response": [seen.record]}
            )
            found = Stack(folder, s3, redis, proxy, direct, api_host, worker_host, key,
                          api, worker, seen, client)  # fmt: skip
            found.dataset_id = _ready(found, _post_digits(found, "train", per_class=6))
            yield found
        finally:
            api.stop()
            worker.stop()
            direct.dispose()


@pytest.fixture
def faults(stack: Stack) -> Iterator[Stack]:
    """The module's stack, every part back after each scenario (whatever it left behind)."""
    yield stack
    stack.proxy.restore()
    if stack.s3.proc is not None:
        stack.s3.resume()
    if stack.redis.proc is None:
        stack.redis.start()


def _post_digits(stack: Stack, name: str, per_class: int) -> str:
    path = stack.folder / f"digits-{name}.zip"
    digits_zip(path, per_class=per_class)
    with path.open("rb") as stream:
        resp = stack.client.post(
            "/v1/datasets", headers=auth(stack.key), files={"file": (path.name, stream)},
            data={"task": "image_classification", "name": name},
        )  # fmt: skip
    assert resp.status_code in (201, 202), resp.text
    dataset_id: str = resp.json()["id"]
    return dataset_id


def _ready(stack: Stack, dataset_id: str, timeout: float = 120) -> str:
    def finished() -> dict[str, Any] | None:
        found = stack.get(f"/v1/datasets/{dataset_id}")
        return found if found is not None and found["status"] != "processing" else None

    done = wait_until(finished, timeout=timeout, interval=0.3, what=f"dataset {dataset_id}")
    assert done["status"] == "ready", done["error"]
    return dataset_id


def _digit_png() -> str:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _job(stack: Stack, job_id: str) -> dict[str, Any] | None:
    return stack.get(f"/v1/jobs/{job_id}")


def _start_job(stack: Stack, model: str, spec: dict[str, Any]) -> str:
    body = {"dataset_id": stack.dataset_id, "model_name": model, **spec}
    resp = stack.client.post("/v1/jobs", headers=auth(stack.key), json=body)
    assert resp.status_code == 201, resp.text
    job_id: str = resp.json()["id"]
    return job_id


def _wait_job(stack: Stack, job_id: str, statuses: tuple[str, ...], timeout: float) -> dict:
    def reached() -> dict[str, Any] | None:
        job = _job(stack, job_id)
        return job if job is not None and job["status"] in statuses else None

    found: dict[str, Any] = wait_until(
        reached, timeout=timeout, interval=0.3, what=f"job {job_id} in {statuses}"
    )
    return found


def _events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        resp = stack.client.get(f"/v1/jobs/{job_id}/events", headers=auth(stack.key),
                                params=params)  # fmt: skip
        assert resp.status_code == 200, resp.text
        page = resp.json()
        found += page["data"]
        if not page["has_more"]:
            return found[::-1]
        params["after"] = page["data"][-1]["id"]


def _epochs(found: list[dict[str, Any]]) -> list[int]:
    """The epochs whose metrics events are among `found`, in order (0: the linear probe's)."""
    return [
        e["data"]["epoch"] for e in found
        if e["type"] == "metrics" and e["data"] and e["data"].get("epoch", 0) >= 1
    ]  # fmt: skip


def _warned(
    stack: Stack, since: int, predicate: Callable[[dict[str, Any]], bool], times: int = 1
) -> bool:
    """Whether the worker logged `times` entries matching `predicate` after its first `since`."""
    return sum(1 for e in stack.worker_log()[since:] if predicate(e)) >= times


def _felt_by_worker(part: str, row_id: str) -> Callable[[dict[str, Any]], bool]:
    """A worker log entry that shows it felt the outage (of the part, for the row `row_id`)."""

    def felt(entry: dict[str, Any]) -> bool:
        message = str(entry.get("message", ""))
        ours = row_id in (entry.get("job_id"), entry.get("dataset_id"))
        if part == "redis":
            return "broker" in message.lower() and (
                "lost" in message or "unreachable" in message or "Cannot connect" in message
            )
        signs = {
            "postgres": ("heartbeat failed", "database is unreachable"),
            "s3": ("storage is unreachable", "checkpoint to the store"),
        }[part]
        return ours and any(sign in message for sign in signs)

    return felt


def _take_away(stack: Stack, part: str) -> None:
    if part == "redis":
        stack.redis.stop()
    elif part == "postgres":
        stack.proxy.cut()
        stack.terminate_backends()
    else:
        stack.s3.pause()


def _bring_back(stack: Stack, part: str) -> None:
    if part == "redis":
        stack.redis.start()
    elif part == "postgres":
        stack.proxy.restore()
    else:
        stack.s3.resume()


def _assert_no_500(stack: Stack) -> None:
    assert stack.seen.bad() == []
    metrics = stack.client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    statuses = {
        line.split('status="')[1].split('"')[0]
        for line in metrics.text.splitlines()
        if line.startswith("hone_http_requests_total{")
    }
    assert {s for s in statuses if s.startswith("5")} <= {"503"}, statuses


@pytest.mark.parametrize("part", PARTS)
def test_a_job_finishes_once_after_the_part_returns(faults: Stack, part: str) -> None:
    model = f"faults-job-{part}"
    job_id = _start_job(faults, model, FAULT_JOB)
    # Well into training: its first epoch reported, and checkpointed (every epoch is).
    wait_until(
        lambda: 1 in _epochs(_events(faults, job_id)),
        timeout=120, interval=0.3, what=f"job {job_id} past its first epoch",
    )  # fmt: skip
    since = len(faults.worker_log())
    _take_away(faults, part)
    wait_until(lambda: faults.part_is_down(part), timeout=30, what=f"/readyz naming {part}")
    wait_until(
        lambda: _warned(faults, since, _felt_by_worker(part, job_id)),
        timeout=60, interval=0.3, what=f"the worker feeling the {part} outage",
    )  # fmt: skip
    if part == "postgres":  # away past the lease: another attempt may take the job over
        lease = faults.row(Job, job_id).lease_expires_at
        wait_until(lambda: time.time() > lease.timestamp() + 1, timeout=30, what="lease expiry")
    _bring_back(faults, part)

    done = _wait_job(faults, job_id, ("succeeded", "failed", "cancelled"), timeout=180)
    assert done["status"] == "succeeded", done["error"]
    assert done["model_version"] == {"name": model, "version": 1}
    models = faults.get(f"/v1/models/{model}")
    assert models is not None
    assert [v["version"] for v in models["versions"]] == [1]

    found = _events(faults, job_id)
    ids = [e["id"] for e in found]
    assert len(ids) == len(set(ids))
    attempts = [e["data"]["attempt"] for e in found if e["message"].startswith("attempt ")]
    assert attempts == list(range(1, len(attempts) + 1)), attempts  # each started once, in order
    assert attempts and len(attempts) <= 2, attempts
    if part != "postgres":  # only a lost lease starts another attempt
        assert attempts == [1]
    assert faults.row(Job, job_id).attempts == len(attempts)
    messages = [e["message"] for e in found]
    # Every epoch's metrics reach the job's events, even those reported while the part was
    # down; an epoch repeats only when a second attempt redid it from the last checkpoint.
    epochs = _epochs(found)
    assert sorted(set(epochs)) == list(range(1, done["progress"]["epoch"] + 1)), messages
    if attempts == [1]:
        assert epochs == sorted(set(epochs)), messages
    assert len([m for m in messages if m.startswith("registered model")]) == 1, messages

    body = {"inputs": [{"image_base64": _digit_png()}], "top_k": 3}
    answer = faults.client.post(f"/v1/models/{model}/predict", json=body,
                                headers=auth(faults.key))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"]["version"] == 1
    _assert_no_500(faults)


@pytest.mark.parametrize("part", PARTS)
def test_an_upload_is_processed_once_after_the_part_returns(faults: Stack, part: str) -> None:
    blocker = None
    if part == "redis":
        # The message must be lost with the broker: the worker is busy training, so the
        # upload's message waits in Redis when Redis goes.
        blocker = _start_job(faults, "faults-blocker", BLOCKER_JOB)
        _wait_job(faults, blocker, ("running",), timeout=60)
    before = faults.get("/v1/datasets?limit=100")
    assert before is not None
    since = len(faults.worker_log())
    name = f"faults-upload-{part}"
    dataset_id = _post_digits(faults, name, per_class=30)
    _take_away(faults, part)
    if part == "redis":
        row = faults.row(Dataset, dataset_id)
        assert row.enqueued_at is not None and row.attempts == 0  # sent, not yet taken
    wait_until(lambda: faults.part_is_down(part), timeout=30, what=f"/readyz naming {part}")
    # The database is retried after 1 s, then 2 s: away for both, it is felt for a while.
    times = 2 if part == "postgres" else 1
    wait_until(
        lambda: _warned(faults, since, _felt_by_worker(part, dataset_id), times),
        timeout=60, interval=0.3, what=f"the worker feeling the {part} outage",
    )  # fmt: skip
    _bring_back(faults, part)

    _ready(faults, dataset_id, timeout=120)
    if part == "redis":  # the message was lost with the broker: the reaper sent it again
        assert any(
            dataset_id in e.get("dataset_ids", [])
            for e in faults.worker_log()[since:]
            if e.get("message") == "re-sent stale datasets"
        )
    dataset = faults.get(f"/v1/datasets/{dataset_id}")
    assert dataset is not None
    assert dataset["num_examples"] == 300 and dataset["report"], dataset
    after = faults.get("/v1/datasets?limit=100")
    assert after is not None
    new = [d for d in after["data"] if d["id"] not in {b["id"] for b in before["data"]}]
    assert [(d["id"], d["name"], d["status"]) for d in new] == [(dataset_id, name, "ready")]
    with make_session_factory(faults.direct)() as session:
        rows = list(session.scalars(select(Dataset).where(Dataset.name == name)))
    assert [r.id for r in rows] == [dataset_id]
    assert rows[0].lease_owner is None and rows[0].attempts >= 1

    def ready_lines() -> list[dict[str, object]]:
        return [
            e for e in faults.worker_log()
            if e.get("message") == "dataset ready" and e.get("dataset_id") == dataset_id
        ]  # fmt: skip

    # The worker logs the line after committing the status the API has just shown.
    wait_until(ready_lines, timeout=30, what="the worker's `dataset ready` line")
    assert len(ready_lines()) == 1
    wait_until(lambda: leftover_uploads(faults.worker_host) == [], timeout=30,
               what="the processed upload removed from the store")  # fmt: skip
    if blocker is not None:
        done = _wait_job(faults, blocker, ("succeeded", "failed", "cancelled"), timeout=120)
        assert done["status"] == "succeeded", done["error"]
    _assert_no_500(faults)
