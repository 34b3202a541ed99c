"""Three hosts on one machine: an API and two workers, each with its own empty data and cache
directories, sharing only PostgreSQL, Redis and an S3 server (the deployment Hone exists for:
GPU workers on other machines than the API, no shared filesystem)."""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.auth.keys import create_key
from app.db import make_engine, make_session_factory, transaction
from app.migrate import upgrade
from app.storage.places import Storage
from ml.backbones.testing import write_test_catalog
from ml.checkpoint import load_checkpoint
from tests.app.jobs.flows import (
    RESUMABLE_JOB,
    auth,
    create_job,
    digits_dataset,
    events,
    wait_for_job,
)
from tests.support.api_process import ApiProcess
from tests.support.s3_server import S3Server, running_s3_server
from tests.support.services import fresh_postgres_database, fresh_redis_db
from tests.support.stack import Backend, WorkerProcess, wait_until


@dataclass
class Hosts:
    folder: Path
    s3: S3Server
    api_host: Backend
    worker_hosts: list[Backend]
    key: str
    api: ApiProcess | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_api(self) -> httpx.Client:
        self.api = ApiProcess(self.api_host, self.folder / "api.log").start()
        return httpx.Client(base_url=self.api.url, timeout=60)

    def start_worker(self, index: int) -> WorkerProcess:
        host = self.worker_hosts[index]
        self.workers.append(WorkerProcess(host, self.folder / f"worker-{index}.log").start())
        return self.workers[-1]

    def storage(self) -> Storage:
        return Storage.from_settings(self.api_host.settings())


def _host(folder: Path, name: str, database: str, broker: str, env: dict[str, str]) -> Backend:
    home = folder / name
    home.mkdir()
    catalog = write_test_catalog(home / "backbones.json")
    return Backend(
        name,
        home / "data",
        database_url=database,
        broker_url=broker,
        extra_env={
            **env,
            "HONE_CACHE_DIR": str(home / "cache"),
            "HONE_BACKBONES_FILES": json.dumps([str(catalog)]),
        },
    )


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hosts]:
    with (
        running_s3_server(tmp_path / "s3.log") as s3,
        fresh_postgres_database() as database,
        fresh_redis_db() as broker,
    ):
        bucket = s3.create_bucket("hone-hosts")
        env = {**s3.env(), "HONE_STORAGE_URL": f"{bucket}/deployment"}
        for name, value in s3.env().items():  # the test reads the bucket too
            monkeypatch.setenv(name, value)
        upgrade(database)
        engine = make_engine(database)
        with transaction(make_session_factory(engine)) as session:
            key = create_key(session, "hosts")
        engine.dispose()
        api_host = _host(tmp_path, "api", database, broker, env)
        workers = [_host(tmp_path, f"worker-{i}", database, broker, env) for i in range(2)]
        found = Hosts(tmp_path, s3, api_host, workers, key)
        try:
            yield found
        finally:
            for process in [*found.workers, found.api]:
                if process is not None:
                    process.stop()


def _checkpoint_step(hosts: Hosts, job_id: str) -> int:
    """The optimizer step of the job's latest checkpoint in the bucket (0: none yet)."""
    local = hosts.folder / "probe" / job_id
    if not hosts.storage().restore_checkpoint(job_id, local):
        return 0
    state = load_checkpoint(local)
    return int(state["progress"]["step"]) if state else 0


def _digit_png() -> str:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), color=128).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _predict(client: httpx.Client, key: str) -> httpx.Response:
    body = {"inputs": [{"image_base64": _digit_png()}], "top_k": 3}
    return client.post("/v1/models/hosts/predict", json=body, headers=auth(key))


def test_a_job_moves_between_hosts_through_the_bucket(hosts: Hosts) -> None:
    client = hosts.start_api()
    first = hosts.start_worker(0)
    dataset = digits_dataset(client, hosts.key, hosts.folder)
    job = create_job(client, hosts.key, dataset, "hosts", **RESUMABLE_JOB)
    wait_until(lambda: _checkpoint_step(hosts, job["id"]) > 0, timeout=240,
               what="the first worker's checkpoint in the bucket")  # fmt: skip
    first.kill()  # the machine is lost: no chance to hand anything over
    killed_at = _checkpoint_step(hosts, job["id"])

    hosts.start_worker(1)  # its reaper queues the job again once the lease has expired
    done = wait_for_job(client, hosts.key, job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    found = events(client, hosts.key, job["id"])
    resumes = [e for e in found if "resume_step" in (e["data"] or {})]
    assert [e["data"]["resume_step"] for e in resumes] == [killed_at]
    assert f"resuming from step {killed_at}" in resumes[0]["message"]
    versions = client.get("/v1/models/hosts", headers=auth(hosts.key)).json()["versions"]
    assert [v["version"] for v in versions] == [1]

    store = hosts.storage().store
    assert store.list("uploads") == []  # processed uploads leave the bucket
    assert store.list(f"jobs/{job['id']}") == []  # so do a finished job's checkpoints
    assert any(k.endswith("/model.safetensors") for k in store.list("models"))
    # No host keeps anything durable on its own disk: data directories stay empty of it.
    for host in [hosts.api_host, *hosts.worker_hosts]:
        for durable in ("uploads", "datasets", "models", "jobs"):
            assert not (host.data_dir / durable).exists(), (host.name, durable)

    answer = _predict(client, hosts.key)
    assert answer.status_code == 200, answer.text
    expected = answer.json()["predictions"]

    # Local disk is a cache: with every cache directory gone, a new API process loads the
    # version from the bucket again and gives the same answer.
    assert hosts.api is not None
    hosts.api.stop()
    for host in [hosts.api_host, *hosts.worker_hosts]:
        shutil.rmtree(host.settings().local_cache_dir, ignore_errors=True)
    client = hosts.start_api()
    again = _predict(client, hosts.key)
    assert again.status_code == 200, again.text
    assert again.json()["predictions"] == expected
