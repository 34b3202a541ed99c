"""A job end to end through the API and the real worker: upload, train, register, inspect."""

from __future__ import annotations

import json
from typing import Any

from tests.app.jobs.conftest import Datasets
from tests.app.jobs.flows import (
    QUICK_TEXT_JOB,
    auth,
    create_job,
    events,
    get_job,
)
from tests.conftest import Stack
from tests.support.storage import storage_of


def test_image_job_trains_registers_and_reports(
    stack: Stack, datasets: Datasets, finished_job: dict[str, Any]
) -> None:
    job = finished_job
    assert job["status"] == "succeeded", job["error"]
    assert job["id"].startswith("job_") and job["object"] == "fine_tuning.job"
    assert job["dataset_id"] == datasets.digits and job["method"] == "full"
    assert job["started_at"] and job["finished_at"] >= job["started_at"] >= job["created_at"]
    assert job["error"] is None
    # Resolved hyperparameters replace the requested ones once known.
    hp = job["hyperparameters"]
    assert hp["epochs"] == 2 and hp["image_size"] == 32
    assert {"batch_size", "learning_rate", "weight_decay"} <= set(hp)
    progress = job["progress"]
    assert progress["epochs"] == 2 and progress["epoch"] == 2
    assert progress["step"] == progress["total_steps"] > 0 and progress["eta_seconds"] == 0
    assert {"train_loss", "val_loss", "val_accuracy", "val_macro_f1"} <= set(job["metrics"])
    assert job["model_version"] == {"name": "digits-e2e", "version": 1}

    version = stack.client.get("/v1/models/digits-e2e/versions/1", headers=stack.headers())
    assert version.status_code == 200, version.text
    body = version.json()
    assert body["status"] == "ready" and body["job_id"] == job["id"]
    assert body["task"] == "image_classification" and body["labels"] == [str(i) for i in range(10)]
    metrics = body["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert set(metrics["per_label"]) == set(body["labels"])
    assert {"precision", "recall", "f1", "support"} <= set(metrics["per_label"]["3"])
    matrix = metrics["confusion_matrix"]
    assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
    assert sum(map(sum, matrix)) == sum(v["support"] for v in metrics["per_label"].values())
    assert {"temperature", "ece_before", "ece_after"} <= set(metrics["calibration"])
    manifest = body["manifest"]
    dataset = stack.client.get(f"/v1/datasets/{datasets.digits}", headers=stack.headers()).json()
    assert manifest["dataset_sha256"] == dataset["sha256"]
    assert manifest["backbone"]["id"] == "tiny_image"
    assert manifest["backbone"]["weights_sha256"].startswith("random:")
    assert manifest["hyperparameters"] == hp and manifest["seed"] == 0
    assert manifest["method"] == "lp_ft" and manifest["method_requested"] == "full"
    assert {"python", "torch", "timm", "transformers", "hone"} <= set(manifest["versions"])
    assert manifest["runtime"]["chosen"] == body["runtime"]
    # Internal locations never leak.
    assert str(stack.backend.data_dir) not in version.text
    # The artifact is in place and the job's scratch space is gone.
    models = stack.backend.data_dir / "models"
    assert len(list(models.glob("*/digits-e2e/1/model.safetensors"))) == 1
    storage = storage_of(stack.backend)
    assert not storage.work_dir(job["id"]).exists()
    assert storage.store.list(f"jobs/{job['id']}") == []


def test_events_record_each_epoch_and_the_outcome(
    stack: Stack, finished_job: dict[str, Any]
) -> None:
    found = events(stack.client, stack.key_a, finished_job["id"])
    assert [e["id"] for e in found] == sorted(e["id"] for e in found)
    assert {e["level"] for e in found} <= {"info", "warn"}
    epochs = [e["data"]["epoch"] for e in found if e["type"] == "metrics"]
    assert epochs == [0, 1, 2]  # the linear probe, then each fine-tuning epoch
    for event in found:
        assert set(event) == {"id", "object", "created_at", "level", "type", "message", "data"}
    assert "registered model digits-e2e version 1" in found[-1]["message"]
    page = stack.client.get(
        f"/v1/jobs/{finished_job['id']}/events?limit=2", headers=stack.headers()
    ).json()
    assert page["has_more"] and [e["id"] for e in page["data"]] == [f["id"] for f in found[:-3:-1]]


def _read_stream(stack: Stack, job_id: str, **headers: str) -> list[tuple[str, dict[str, Any]]]:
    frames: list[tuple[str, dict[str, Any]]] = []
    with stack.client.stream(
        "GET", f"/v1/jobs/{job_id}/events",
        headers={**stack.headers(), "Accept": "text/event-stream", **headers},
    ) as resp:  # fmt: skip
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        kind, data = "", ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and data:
                frames.append((kind, json.loads(data)))
                kind, data = "", ""
    return frames


def test_stream_of_a_finished_job_replays_everything_and_ends(
    stack: Stack, finished_job: dict[str, Any]
) -> None:
    frames = _read_stream(stack, finished_job["id"])
    listed = events(stack.client, stack.key_a, finished_job["id"])
    assert [f[1] for f in frames[:-1]] == listed
    assert frames[-1] == ("end", {"id": finished_job["id"], "status": "succeeded"})
    resumed = _read_stream(stack, finished_job["id"], **{"Last-Event-ID": str(listed[-2]["id"])})
    assert [f[1]["id"] for f in resumed[:-1]] == [listed[-1]["id"]]


def test_live_stream_follows_a_text_job_until_it_ends(stack: Stack, datasets: Datasets) -> None:
    job = create_job(stack.client, stack.key_a, datasets.tweets, "tweets-live", **QUICK_TEXT_JOB)
    frames = _read_stream(stack, job["id"])
    kinds = [kind for kind, _ in frames]
    assert kinds[-1] == "end" and frames[-1][1]["status"] == "succeeded"
    assert "metrics" in kinds  # the linear probe's validation metrics
    final = get_job(stack.client, stack.key_a, job["id"])
    assert final["status"] == "succeeded" and final["model_version"]["name"] == "tweets-live"
    assert [f[1] for f in frames[:-1]] == events(stack.client, stack.key_a, job["id"])
    version = stack.client.get(
        f"/v1/models/tweets-live/versions/{final['model_version']['version']}",
        headers=stack.headers(),
    ).json()
    assert version["task"] == "text_classification"
    assert set(version["labels"]) == {"negative", "neutral", "positive"}
    assert version["manifest"]["method"] == "linear_probe"


def test_jobs_list_filters_and_pages(stack: Stack, finished_job: dict[str, Any]) -> None:
    listed = stack.client.get(
        "/v1/jobs", params={"model_name": "digits-e2e"}, headers=stack.headers()
    ).json()
    assert listed["object"] == "list" and [j["id"] for j in listed["data"]] == [finished_job["id"]]
    succeeded = stack.client.get(
        "/v1/jobs", params={"status": "succeeded", "limit": 1}, headers=stack.headers()
    ).json()
    assert len(succeeded["data"]) == 1 and succeeded["data"][0]["status"] == "succeeded"
    bad = stack.client.get("/v1/jobs", params={"status": "done"}, headers=stack.headers())
    assert bad.status_code == 422


def test_cancelling_a_finished_job_is_a_conflict(
    stack: Stack, finished_job: dict[str, Any]
) -> None:
    resp = stack.client.post(f"/v1/jobs/{finished_job['id']}/cancel", headers=stack.headers())
    assert resp.status_code == 409 and resp.json()["code"] == "job_finished"
    assert get_job(stack.client, stack.key_a, finished_job["id"])["status"] == "succeeded"


def test_another_projects_job_is_404_everywhere(stack: Stack, finished_job: dict[str, Any]) -> None:
    other = auth(stack.key_b)
    job_id = finished_job["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/events"),
    ]:
        resp = stack.client.request(method, path, headers=other)
        assert resp.status_code == 404 and resp.json()["code"] == "job_not_found", path
    streamed = stack.client.get(
        f"/v1/jobs/{job_id}/events", headers={**other, "Accept": "text/event-stream"}
    )
    assert streamed.status_code == 404
    listed = stack.client.get("/v1/jobs?limit=100", headers=other).json()["data"]
    assert job_id not in {j["id"] for j in listed}
