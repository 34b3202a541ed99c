"""POST /v1/jobs with "dry_run": true: the plan a real create would run, refused exactly as a
create is, with nothing written or queued; and the real run then resolves the same plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from app.auth.keys import authenticate
from app.models import Dataset, IdempotencyKey, Job, JobEvent
from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID
from tests.app.jobs.conftest import Datasets
from tests.app.jobs.flows import events, problem, wait_for_job
from tests.app.jobs.test_job_requests import CASES
from tests.conftest import Stack
from tests.support.db import stack_session


def _written(stack: Stack) -> tuple[int, ...]:
    """Rows a create writes (the job, its events, the key), in every project: a job is only
    ever sent to the broker once its row has committed, so no new row means nothing queued."""
    with stack_session(stack) as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Job, JobEvent, IdempotencyKey)
        )


def _dry_run(stack: Stack, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = stack.headers() | ({"Idempotency-Key": key} if key else {})
    resp = stack.client.post("/v1/jobs", headers=headers, json=body | {"dry_run": True})
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    assert answer["object"] == "job.plan" and answer["dry_run"] is True
    return answer


def _legacy_dataset(stack: Stack) -> str:
    """A ready image dataset stored before ingest measured its inputs (no report "inputs")."""
    with stack_session(stack) as session:
        project = authenticate(session, stack.key_a)
        assert project is not None
        row = Dataset(
            project_id=project.id, name="legacy", task="image_classification", status="ready",
            sha256="0" * 64, num_examples=50, labels=["a", "b"], label_counts={"a": 25, "b": 25},
            report={"label_counts": {"a": 25, "b": 25}, "warnings": []},
        )  # fmt: skip
        session.add(row)
        session.flush()
        return row.id


def test_a_dry_run_answers_the_plan_and_writes_nothing(stack: Stack, datasets: Datasets) -> None:
    before = _written(stack)
    body = {"dataset_id": datasets.digits, "backbone": TINY_IMAGE_ID, "model_name": "dry-plan"}
    answer = _dry_run(stack, body, key="dry-only")
    assert _written(stack) == before
    assert answer["dataset_id"] == datasets.digits and answer["backbone"] == TINY_IMAGE_ID
    assert answer["method"] == "auto" and answer["num_examples"] == 60
    assert answer["num_validation_examples"] is None
    plan = answer["plan"]
    assert plan["method"] == "auto" and plan["device"] == "cpu"
    assert "auto" not in plan["hyperparameters"].values()
    assert {"batch_size", "epochs", "learning_rate", "image_size"} <= set(plan["hyperparameters"])
    names = [c["name"] for c in plan["candidates"]]
    assert names == ["classical", "linear_probe", "lp_ft"]
    assert all(c["description"] and c["estimated_seconds"] >= 0 for c in plan["candidates"])
    assert plan["estimated_seconds"] >= sum(c["estimated_seconds"] for c in plan["candidates"])
    assert plan["time_budget_seconds"] == plan["hyperparameters"]["time_budget_seconds"] > 0
    listed = stack.client.get("/v1/jobs?model_name=dry-plan", headers=stack.headers()).json()
    assert listed["data"] == []

    probe = _dry_run(stack, body | {"method": "linear_probe"})["plan"]
    assert [c["name"] for c in probe["candidates"]] == ["linear_probe"]
    assert probe["time_budget_seconds"] is None and "epochs" not in probe["hyperparameters"]


def test_a_plan_uses_the_measured_inputs_and_falls_back_without_them(
    stack: Stack, datasets: Datasets
) -> None:
    """The digits are 32 px: a 224-px backbone tunes them smaller. A dataset stored before its
    inputs were measured gets the backbone's own size, as its real run does."""
    body = {"backbone": "efficientnet_lite0", "model_name": "dry-sizes"}
    measured = _dry_run(stack, body | {"dataset_id": datasets.digits})["plan"]
    legacy = _dry_run(stack, body | {"dataset_id": _legacy_dataset(stack)})["plan"]
    assert measured["hyperparameters"]["image_size"] < 224
    assert legacy["hyperparameters"]["image_size"] == 224


@pytest.mark.parametrize(("name", "make", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_dry_run_is_refused_as_a_create_is(
    stack: Stack, datasets: Datasets, name: str, make: Callable[..., dict[str, Any]],
    status: int, code: str,
) -> None:  # fmt: skip
    body = {"model_name": f"dry-refused-{name}"} | make(stack, datasets)
    before = _written(stack)
    resp = stack.client.post("/v1/jobs", headers=stack.headers(), json=body | {"dry_run": True})
    problem(resp, status, code)
    assert _written(stack) == before


@pytest.mark.parametrize("flag", ["true", 1, None, "yes"])
def test_dry_run_must_be_a_json_boolean(stack: Stack, datasets: Datasets, flag: object) -> None:
    body = {"dataset_id": datasets.tweets, "backbone": TINY_TEXT_ID, "model_name": "dry-flag"}
    before = _written(stack)
    resp = stack.client.post("/v1/jobs", headers=stack.headers(), json=body | {"dry_run": flag})
    found = problem(resp, 422, "validation_error")
    assert any(e["field"].endswith("dry_run") for e in found["errors"]), found
    assert _written(stack) == before


def test_a_dry_run_refuses_a_model_name_of_another_task(
    stack: Stack, datasets: Datasets, finished_job: dict[str, Any]
) -> None:
    body = {"dataset_id": datasets.tweets, "backbone": TINY_TEXT_ID, "model_name": "digits-e2e"}
    resp = stack.client.post("/v1/jobs", headers=stack.headers(), json=body | {"dry_run": True})
    problem(resp, 409, "model_task_mismatch")


REAL_RUNS: list[tuple[str, Callable[[Datasets], dict[str, Any]]]] = [
    # auto on a separate validation dataset, its fine-tuning kept to a short budget.
    ("image-auto", lambda d: {
        "dataset_id": d.digits, "validation_dataset_id": d.digits, "backbone": TINY_IMAGE_ID,
        "hyperparameters": {"time_budget_seconds": 10},
    }),
    ("text-probe", lambda d: {
        "dataset_id": d.tweets, "backbone": TINY_TEXT_ID, "method": "linear_probe",
        "validation_split": 0.25, "seed": 3,
    }),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make"), REAL_RUNS, ids=[r[0] for r in REAL_RUNS])
def test_the_real_run_resolves_the_plan_of_its_dry_run(
    stack: Stack, datasets: Datasets, name: str, make: Callable[[Datasets], dict[str, Any]]
) -> None:
    body = {"model_name": f"dry-then-real-{name}"} | make(datasets)
    key = f"dry-then-real-{name}-{stack.backend.name}"
    answer = _dry_run(stack, body, key=key)
    if "validation_dataset_id" in body:
        assert answer["num_validation_examples"] == 60

    # The dry run left the key unused: the real create with it makes the job, once.
    headers = stack.headers() | {"Idempotency-Key": key}
    created = stack.client.post("/v1/jobs", headers=headers, json=body)
    assert created.status_code == 201, created.text
    again = stack.client.post("/v1/jobs", headers=headers, json=body)
    assert again.status_code == 201 and again.json()["id"] == created.json()["id"]
    # A dry run after it still only plans, whatever the key names.
    assert _dry_run(stack, body, key=key)["plan"] == answer["plan"]

    job = wait_for_job(stack.client, stack.key_a, created.json()["id"])
    assert job["status"] == "succeeded", job
    found = events(stack.client, stack.key_a, job["id"])
    resolved = [e["data"]["hyperparameters"] for e in found
                if e["message"] == "resolved hyperparameters"]  # fmt: skip
    assert resolved == [answer["plan"]["hyperparameters"]]
    # The whole plan, estimates included: the worker planned from the same numbers.
    planned = [e["data"]["plan"] for e in found if e["data"] and "plan" in e["data"]]
    assert planned == [answer["plan"]]
