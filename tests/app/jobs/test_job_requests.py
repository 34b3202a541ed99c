"""What POST /v1/jobs refuses, and how; idempotency; cancelling a running job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.auth.keys import authenticate
from app.db import make_engine, make_session_factory, transaction
from app.models import Dataset
from tests.app.jobs.conftest import Datasets
from tests.app.jobs.flows import (
    LONG_IMAGE_JOB,
    QUICK_TEXT_JOB,
    auth,
    create_job,
    events,
    problem,
    wait_for_job,
)
from tests.conftest import Stack
from tests.support.stack import wait_until
from tests.support.storage import storage_of


def _insert_dataset(stack: Stack, status: str) -> str:
    """A dataset row in a state an upload only passes through (processing) or ends in (failed)."""
    engine = make_engine(stack.backend.settings().sqlalchemy_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            project = authenticate(session, stack.key_a)
            assert project is not None
            row = Dataset(
                project_id=project.id, name="x", task="text_classification", status=status,
                error_code="bad_encoding" if status == "failed" else None,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id
    finally:
        engine.dispose()


Case = tuple[str, Callable[[Stack, Datasets], dict[str, Any]], int, str]

CASES: list[Case] = [
    ("unknown-dataset", lambda s, d: {"dataset_id": "ds_nope", "backbone": "tiny_text"},
     404, "dataset_not_found"),
    ("processing-dataset",
     lambda s, d: {"dataset_id": _insert_dataset(s, "processing"), "backbone": "tiny_text"},
     409, "dataset_not_ready"),
    ("failed-dataset",
     lambda s, d: {"dataset_id": _insert_dataset(s, "failed"), "backbone": "tiny_text"},
     422, "dataset_failed"),
    ("unknown-backbone", lambda s, d: {"dataset_id": d.tweets, "backbone": "gpt-17"},
     422, "unknown_backbone"),
    ("unavailable-backbone",
     lambda s, d: {"dataset_id": d.digits, "backbone": "missing_weights"},
     422, "backbone_unavailable"),
    ("image-backbone-on-text", lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_image"},
     422, "modality_mismatch"),
    ("epochs-out-of-range",
     lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text",
                   "hyperparameters": {"epochs": 0, "learning_rate": "fast"}},
     422, "invalid_hyperparameters"),
    ("unknown-hyperparameter",
     lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text",
                   "hyperparameters": {"dropout": 0.1}},
     422, "invalid_hyperparameters"),
    ("bad-model-name",
     lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text", "model_name": "../etc"},
     422, "validation_error"),
    ("split-out-of-range",
     lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text", "validation_split": 0.9},
     422, "validation_error"),
    ("bad-method", lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text", "method": "x"},
     422, "validation_error"),
    ("unknown-field", lambda s, d: {"dataset_id": d.tweets, "backbone": "tiny_text", "lr": 1},
     422, "validation_error"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_invalid_job_requests_are_refused_and_create_nothing(
    stack: Stack, datasets: Datasets, name: str, make: Callable[..., dict[str, Any]],
    status: int, code: str,
) -> None:  # fmt: skip
    before = stack.client.get("/v1/jobs?limit=100", headers=stack.headers()).json()["data"]
    body = {"model_name": f"refused-{name}"} | make(stack, datasets)
    resp = stack.client.post("/v1/jobs", headers=stack.headers(), json=body)
    found = problem(resp, status, code)
    if code == "unknown_backbone":
        assert "tiny_text" in found["detail"] and "efficientnet_lite0" in found["backbones"]
    if code == "backbone_unavailable":
        assert "does not exist" in found["detail"]  # why, and what fixes it
    if code == "invalid_hyperparameters":
        fields = {e["field"] for e in found["errors"]}
        assert fields == {f"hyperparameters.{k}" for k in body["hyperparameters"]}
    after = stack.client.get("/v1/jobs?limit=100", headers=stack.headers()).json()["data"]
    assert after == before


def test_another_projects_dataset_is_not_found(stack: Stack, datasets: Datasets) -> None:
    resp = stack.client.post(
        "/v1/jobs", headers=auth(stack.key_b),
        json={"dataset_id": datasets.tweets, "backbone": "tiny_text", "model_name": "theirs"},
    )  # fmt: skip
    problem(resp, 404, "dataset_not_found")


def test_a_model_name_of_another_task_is_a_conflict(
    stack: Stack, datasets: Datasets, finished_job: dict[str, Any]
) -> None:
    resp = stack.client.post(
        "/v1/jobs", headers=stack.headers(),
        json={"dataset_id": datasets.tweets, "backbone": "tiny_text", "model_name": "digits-e2e"},
    )  # fmt: skip
    problem(resp, 409, "model_task_mismatch")


def test_idempotency_key_returns_the_first_job(stack: Stack, datasets: Datasets) -> None:
    headers = {**stack.headers(), "Idempotency-Key": "job-once"}
    body = {"dataset_id": datasets.tweets, "model_name": "idem", **QUICK_TEXT_JOB}
    first = stack.client.post("/v1/jobs", headers=headers, json=body)
    second = stack.client.post("/v1/jobs", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    other = stack.client.post("/v1/jobs", headers=headers, json=body | {"seed": 7})
    problem(other, 422, "idempotency_key_reused")
    listed = stack.client.get("/v1/jobs?model_name=idem", headers=stack.headers()).json()
    assert [j["id"] for j in listed["data"]] == [first.json()["id"]]
    # Leave the worker idle for the next test.
    stack.client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=stack.headers())
    wait_for_job(stack.client, stack.key_a, first.json()["id"])


def test_cancelling_a_running_job_stops_it_within_seconds(stack: Stack, datasets: Datasets) -> None:
    job = create_job(stack.client, stack.key_a, datasets.digits, "cancel-me", **LONG_IMAGE_JOB)
    work = storage_of(stack.backend).work_dir(job["id"])
    # The first fine-tuning checkpoint: it is training, with state on disk to clean up.
    wait_until(lambda: (work / "checkpoint" / "state.json").is_file(), timeout=180,
               what="the first epoch's checkpoint")  # fmt: skip
    resp = stack.client.post(f"/v1/jobs/{job['id']}/cancel", headers=stack.headers())
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] in ("cancelling", "cancelled")
    again = stack.client.post(f"/v1/jobs/{job['id']}/cancel", headers=stack.headers())
    assert again.status_code in (200, 409)  # still cancelling, or already cancelled
    done = wait_for_job(stack.client, stack.key_a, job["id"], timeout=20)
    assert done["status"] == "cancelled" and done["model_version"] is None
    assert done["finished_at"] is not None
    problem(stack.client.get("/v1/models/cancel-me", headers=stack.headers()), 404,
            "model_not_found")  # fmt: skip
    wait_until(lambda: not work.exists(), timeout=10, what="the work dir removed")
    messages = [e["message"] for e in events(stack.client, stack.key_a, job["id"])]
    assert "cancellation requested; stopping the worker" in messages
    assert messages[-1] == "cancelled; nothing was registered"
