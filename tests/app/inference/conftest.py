"""Trained model versions for the prediction tests, made through the real pipeline:
upload → fine-tuning job on the worker → registered version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID
from tests.conftest import Stack
from tests.factories.uploads import digits_zip, tweets_csv
from tests.support.api_process import ApiProcess
from tests.support.stack import wait_until


@dataclass(frozen=True)
class Trained:
    name: str
    version: int
    dataset_id: str

    def artifact_dir(self, stack: Stack) -> Path:
        (path,) = (stack.backend.data_dir / "models").glob(f"*/{self.name}/{self.version}")
        return path


def train(stack: Stack, upload: Path, task: str, backbone: str, name: str, **job: Any) -> Trained:
    resp = stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        files={"file": (upload.name, upload.read_bytes())},
        data={"task": task},
    )
    assert resp.status_code == 201, resp.text
    dataset_id = resp.json()["id"]
    body = {
        "dataset_id": dataset_id,
        "backbone": backbone,
        "model_name": name,
        "method": "linear_probe",
        "seed": 1,
        **job,
    }
    resp = stack.client.post("/v1/jobs", headers=stack.headers(), json=body)
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["id"]

    def finished() -> dict[str, Any] | None:
        row = stack.client.get(f"/v1/jobs/{job_id}", headers=stack.headers()).json()
        return row if row["status"] in ("succeeded", "failed", "cancelled") else None

    row = wait_until(finished, timeout=300, interval=0.5, what=f"job {job_id}")
    assert row["status"] == "succeeded", row
    return Trained(name, row["model_version"]["version"], dataset_id)


@pytest.fixture(scope="session")
def image_model(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    path = tmp_path_factory.mktemp("img") / "digits.zip"
    digits_zip(path, per_class=8)
    return train(stack, path, "image_classification", TINY_IMAGE_ID, "digits")


@pytest.fixture(scope="session")
def text_model(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    path = tmp_path_factory.mktemp("txt") / "tweets.csv"
    tweets_csv(path, 120)
    return train(stack, path, "text_classification", TINY_TEXT_ID, "tweets")


@pytest.fixture(scope="session")
def api_server(stack: Stack, image_model: Trained, text_model: Trained) -> Iterator[ApiProcess]:
    """A real uvicorn server on loopback, over the same database and data directory."""
    server = ApiProcess(stack.backend, stack.backend.data_dir / "api.log").start()
    yield server
    server.stop()
