"""Plain helpers for job and registry tests: datasets through the API, jobs, waiting.

Tiny random-init backbones (ml.backbones.testing) keep most jobs to seconds; the factories'
real data (digits, tweets) keeps the metrics meaningful.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID
from tests.factories.uploads import digits_zip, tweets_csv
from tests.support.stack import wait_until

TERMINAL = ("succeeded", "failed", "cancelled")
# Long enough that a test can act while it trains, short enough to finish when it must.
LONG_IMAGE_JOB: dict[str, Any] = {
    "backbone": TINY_IMAGE_ID,
    "method": "full",
    "hyperparameters": {"epochs": 50, "batch_size": 4, "patience": 50, "image_size": 32},
}
QUICK_IMAGE_JOB: dict[str, Any] = {
    "backbone": TINY_IMAGE_ID,
    "method": "full",
    "hyperparameters": {"epochs": 2, "image_size": 32},
}
QUICK_TEXT_JOB: dict[str, Any] = {"backbone": TINY_TEXT_ID, "method": "linear_probe"}


# Enough epochs that two workers can be stopped in turn, few enough to finish soon after.
RESUMABLE_JOB: dict[str, Any] = {
    "backbone": "tiny_image",
    "method": "full",
    "hyperparameters": {"epochs": 4, "batch_size": 4, "patience": 4, "image_size": 32},
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def problem(resp: Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["detail"]
    return body


def upload(client: TestClient, key: str, path: Path, task: str) -> str:
    """The id of a ready dataset made from `path` (waiting out a worker busy training)."""
    with path.open("rb") as stream:
        resp = client.post(
            "/v1/datasets", headers=auth(key), files={"file": (path.name, stream)},
            data={"task": task},
        )  # fmt: skip
    assert resp.status_code in (201, 202), resp.text
    dataset_id: str = resp.json()["id"]

    def ready() -> bool:
        status = client.get(f"/v1/datasets/{dataset_id}", headers=auth(key)).json()["status"]
        assert status != "failed"
        return bool(status == "ready")

    wait_until(ready, timeout=180, interval=0.3, what=f"dataset {dataset_id} ready")
    return dataset_id


def digits_dataset(client: TestClient, key: str, folder: Path, per_class: int = 6) -> str:
    path = folder / f"digits-{per_class}.zip"
    digits_zip(path, per_class=per_class)
    return upload(client, key, path, "image_classification")


def tweets_dataset(client: TestClient, key: str, folder: Path, n: int = 60) -> str:
    path = folder / f"tweets-{n}.csv"
    tweets_csv(path, n)
    return upload(client, key, path, "text_classification")


def create_job(
    client: TestClient, key: str, dataset_id: str, model_name: str, **body: Any
) -> dict[str, Any]:
    resp = client.post(
        "/v1/jobs", headers=auth(key),
        json={"dataset_id": dataset_id, "model_name": model_name, **body},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    job: dict[str, Any] = resp.json()
    return job


def get_job(client: TestClient, key: str, job_id: str) -> dict[str, Any]:
    resp = client.get(f"/v1/jobs/{job_id}", headers=auth(key))
    assert resp.status_code == 200, resp.text
    job: dict[str, Any] = resp.json()
    return job


def wait_for_job(
    client: TestClient,
    key: str,
    job_id: str,
    statuses: tuple[str, ...] = TERMINAL,
    timeout: float = 240,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = get_job(client, key, job_id)
        return job if job["status"] in statuses else None

    job: dict[str, Any] = wait_until(
        reached, timeout=timeout, interval=0.25, what=f"job {job_id} in {statuses}"
    )
    return job


def events(client: TestClient, key: str, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job, oldest first."""
    found: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
        resp = client.get(f"/v1/jobs/{job_id}/events", headers=auth(key), params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        found += page["data"]
        if not page["has_more"]:
            return found[::-1]
        after = page["data"][-1]["id"]
