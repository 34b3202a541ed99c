"""Jobs survive what happens to workers: duplicate deliveries, a SIGKILLed worker, a graceful
shutdown. Each test gets its own backend (no shared worker), so it decides when workers run."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth.keys import authenticate, create_key
from app.db import make_engine, make_session_factory, transaction
from app.main import create_app
from app.models import Job
from app.models.base import utcnow
from ml.checkpoint import load_checkpoint
from tests.app.jobs.conftest import Datasets
from tests.app.jobs.flows import (
    QUICK_TEXT_JOB,
    RESUMABLE_JOB,
    auth,
    create_job,
    digits_dataset,
    events,
    get_job,
    tweets_dataset,
    wait_for_job,
)
from tests.conftest import Stack, fresh_backend
from tests.support.stack import Backend, WorkerProcess, wait_until
from tests.support.storage import storage_of


@dataclass
class Spare:
    backend: Backend
    client: TestClient
    key: str
    folder: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, queues: str = "train,data") -> WorkerProcess:
        log = self.folder / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(self.backend, log, queues=queues).start()
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "".join(w.log() for w in self.workers)


@pytest.fixture
def spare(backend: Backend, tmp_path: Path) -> Iterator[Spare]:
    with fresh_backend(backend.name, tmp_path / "hone") as fresh:
        engine = make_engine(fresh.settings().sqlalchemy_url)
        with transaction(make_session_factory(engine)) as session:
            key = create_key(session, "spare")
        engine.dispose()
        app = create_app(fresh.settings(upload_wait_seconds=30))
        with TestClient(app, raise_server_exceptions=False) as client:
            spare = Spare(fresh, client, key, tmp_path)
            try:
                yield spare
            finally:
                for worker in spare.workers:
                    worker.stop()


def _skipped(spare: Spare, job_id: str) -> int:
    return sum(
        1 for line in spare.logs().splitlines()
        if "job skipped" in line and f'"job_id": "{job_id}"' in line
    )  # fmt: skip


def _versions(spare: Spare, name: str) -> list[int]:
    resp = spare.client.get(f"/v1/models/{name}", headers=auth(spare.key))
    assert resp.status_code == 200, resp.text
    return [v["version"] for v in resp.json()["versions"]]


def test_cancelled_queued_job_never_runs_and_a_duplicate_runs_once(spare: Spare) -> None:
    spare.start_worker(queues="data")  # nothing consumes `train` yet
    dataset = tweets_dataset(spare.client, spare.key, spare.folder)
    queued = create_job(spare.client, spare.key, dataset, "never", **QUICK_TEXT_JOB)
    cancel = spare.client.post(f"/v1/jobs/{queued['id']}/cancel", headers=auth(spare.key))
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    twice = create_job(spare.client, spare.key, dataset, "twice", **QUICK_TEXT_JOB)
    spare.client.app.state.queue.train_job(twice["id"])  # type: ignore[attr-defined]

    spare.start_worker(queues="train")
    done = wait_for_job(spare.client, spare.key, twice["id"])
    assert done["status"] == "succeeded", done["error"]
    wait_until(lambda: _skipped(spare, queued["id"]) == 1 and _skipped(spare, twice["id"]) == 1,
               timeout=60, what="both extra deliveries skipped")  # fmt: skip
    never = get_job(spare.client, spare.key, queued["id"])
    assert never["status"] == "cancelled" and never["started_at"] is None
    assert [e["message"] for e in events(spare.client, spare.key, queued["id"])] == [
        "job created; waiting for a worker",
        "cancelled before it started",
    ]
    started = [
        e for e in events(spare.client, spare.key, twice["id"]) if "attempt" in (e["data"] or {})
    ]
    assert [e["data"]["attempt"] for e in started] == [1]
    assert _versions(spare, "twice") == [1]
    problem = spare.client.get("/v1/models/never", headers=auth(spare.key))
    assert problem.status_code == 404


def _checkpoint_step(spare: Spare, job_id: str) -> int:
    """The optimizer step of the job's last checkpoint in the store (0: none yet)."""
    local = spare.backend.data_dir / "probe-checkpoint"
    storage_of(spare.backend).restore_checkpoint(job_id, local)
    state = load_checkpoint(local)
    return int(state["progress"]["step"]) if state else 0


def _resumes(spare: Spare, job_id: str) -> list[int]:
    found = events(spare.client, spare.key, job_id)
    return [e["data"]["resume_step"] for e in found if "resume_step" in (e["data"] or {})]


def test_a_job_survives_a_graceful_shutdown_and_a_killed_worker(spare: Spare) -> None:
    first = spare.start_worker()
    dataset = digits_dataset(spare.client, spare.key, spare.folder)
    job = create_job(spare.client, spare.key, dataset, "survivor", **RESUMABLE_JOB)
    wait_until(lambda: _checkpoint_step(spare, job["id"]) > 0, timeout=240,
               what="the first checkpoint")  # fmt: skip

    # SIGTERM to the main process only, as `docker stop` does: it must reach the training
    # child, which checkpoints where it is and puts the job back in the queue.
    assert first.proc is not None
    os.kill(first.proc.pid, signal.SIGTERM)
    first.proc.wait(timeout=60)
    assert get_job(spare.client, spare.key, job["id"])["status"] == "queued"
    preempted_at = _checkpoint_step(spare, job["id"])

    second = spare.start_worker()
    wait_until(lambda: _resumes(spare, job["id"]) == [preempted_at], timeout=120,
               what="the second worker resuming")  # fmt: skip
    wait_until(lambda: _checkpoint_step(spare, job["id"]) > preempted_at, timeout=120,
               what="a checkpoint of the second worker")  # fmt: skip
    second.kill()  # SIGKILL to the worker and its pool: no chance to clean up
    assert get_job(spare.client, spare.key, job["id"])["status"] == "running"
    killed_at = _checkpoint_step(spare, job["id"])

    spare.start_worker()  # its reaper finds the expired lease and queues the job again
    done = wait_for_job(spare.client, spare.key, job["id"], timeout=300)
    assert done["status"] == "succeeded", done["error"]
    assert done["model_version"] == {"name": "survivor", "version": 1}
    assert _versions(spare, "survivor") == [1]
    assert _resumes(spare, job["id"]) == [preempted_at, killed_at]
    found = events(spare.client, spare.key, job["id"])
    messages = [e["message"] for e in found]
    assert sum("queued again; the next worker resumes" in m for m in messages) == 1
    assert sum("stopped responding" in m for m in messages) == 1
    # A graceful stop is not a crash, so it does not count towards job_max_attempts.
    assert [e["data"]["attempt"] for e in found if "attempt" in (e["data"] or {})] == [1, 1, 2]


def test_a_job_that_keeps_killing_its_worker_fails_for_good(
    stack: Stack, datasets: Datasets
) -> None:
    """As if three workers had died running it (out of memory, say): the next delivery gives
    up instead of killing a fourth."""
    engine = make_engine(stack.backend.settings().sqlalchemy_url)
    with transaction(make_session_factory(engine)) as session:
        project = authenticate(session, stack.key_a)
        assert project is not None
        row = Job(
            project_id=project.id, dataset_id=datasets.digits, backbone="tiny_image",
            model_name="doomed", attempts=3, enqueued_at=utcnow(),
        )  # fmt: skip
        session.add(row)
    engine.dispose()
    stack.client.app.state.queue.train_job(row.id)  # type: ignore[attr-defined]
    done = wait_for_job(stack.client, stack.key_a, row.id, timeout=60)
    assert done["status"] == "failed" and done["error"]["code"] == "worker_lost"
    assert "crashed its worker 3 times" in done["error"]["message"]
    last = events(stack.client, stack.key_a, row.id)[-1]
    assert last["level"] == "error" and last["message"] == done["error"]["message"]
