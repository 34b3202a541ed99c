"""Every task end to end through the API and a real worker, on both backends: upload, train
with only dataset, backbone and model name, read the version, predict.

Regression targets here are real quantities of real data: a digit image's ink (the share of
its pixels that are drawn, which the model must see rather than read off a label) and a
tweet's sentiment mapped to -1/0/1 plus its length in words (two targets).
"""

from __future__ import annotations

import base64
import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID
from tests.app.jobs.flows import auth, create_job, problem, wait_for_job
from tests.conftest import Stack
from tests.factories.uploads import tweets
from tests.support.stack import wait_until

_SENTIMENT = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}


def _digits_ink_zip(path: Path, n: int = 80) -> list[bytes]:
    """Digit PNGs with labels.csv `filename,ink`; returns a few images to predict on."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows, entries = ["filename,ink"], {}
    for index in range(n):
        pixels = digits.images[index]
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8), mode="L")
        buffer = io.BytesIO()
        image.resize((32, 32), Image.Resampling.NEAREST).save(buffer, format="PNG")
        name = f"images/{index:04d}.png"
        entries[name] = buffer.getvalue()
        rows.append(f"{name},{float((pixels > 4).mean()):.4f}")
    entries["labels.csv"] = ("\n".join(rows) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return [entries[f"images/{i:04d}.png"] for i in range(3)]


def _tweets_scores_csv(path: Path, n: int = 80) -> list[str]:
    pairs = tweets(n)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "sentiment", "words"])
        for text, label in pairs:
            writer.writerow([text, _SENTIMENT[label], len(text.split())])
    return [text for text, _ in pairs[:3]]


def _upload(stack: Stack, path: Path, **fields: str) -> dict[str, Any]:
    with path.open("rb") as stream:
        resp = stack.client.post(
            "/v1/datasets", headers=auth(stack.key_a), files={"file": (path.name, stream)},
            data=fields,
        )  # fmt: skip
    assert resp.status_code in (201, 202), resp.text
    dataset_id = resp.json()["id"]

    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = stack.client.get(
            f"/v1/datasets/{dataset_id}", headers=auth(stack.key_a)
        ).json()
        assert body["status"] != "failed", body["error"]
        return body if body["status"] == "ready" else None

    dataset: dict[str, Any] = wait_until(ready, timeout=180, interval=0.3, what="dataset ready")
    return dataset


def _version(stack: Stack, job: dict[str, Any]) -> dict[str, Any]:
    assert job["status"] == "succeeded", job["error"]
    ref = job["model_version"]
    resp = stack.client.get(
        f"/v1/models/{ref['name']}/versions/{ref['version']}", headers=auth(stack.key_a)
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _assert_interval(prediction: dict[str, Any], coverage: float) -> float:
    low, high = prediction["interval"]
    assert low <= prediction["value"] <= high
    assert prediction["coverage"] == coverage
    return float(high - low)


def test_image_regression_predicts_values_with_intervals(stack: Stack, tmp_path: Path) -> None:
    images = _digits_ink_zip(tmp_path / "ink.zip")
    dataset = _upload(stack, tmp_path / "ink.zip", task="image_regression", target_column="ink")
    assert dataset["task"] == "image_regression" and dataset["targets"] == ["ink"]
    assert dataset["num_examples"] == 80 and dataset["labels"] == []
    job = create_job(
        stack.client, stack.key_a, dataset["id"], "ink", backbone=TINY_IMAGE_ID,
        method="full", hyperparameters={"epochs": 2, "image_size": 32},
    )  # fmt: skip
    job = wait_for_job(stack.client, stack.key_a, job["id"])
    version = _version(stack, job)
    assert job["method_chosen"] == "full" == version["method_chosen"]
    assert version["task"] == "image_regression" and version["labels"] == ["ink"]
    metrics = version["metrics"]
    assert {"mae", "rmse", "r2", "spearman"} <= set(metrics)
    assert metrics["rmse"] >= metrics["mae"] >= 0
    intervals = metrics["intervals"]
    assert intervals["coverage"] == 0.9 and 0 <= intervals["empirical_coverage"] <= 1
    assert len(metrics["predicted_vs_true"]) == metrics["num_val"]
    assert {"val_rmse", "val_r2"} <= set(job["metrics"])

    files = [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    resp = stack.client.post("/v1/models/ink/predict", headers=auth(stack.key_a), files=files)
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    assert len(predictions) == 3
    wide = [_assert_interval(p, 0.9) for p in predictions]
    body = {"inputs": [{"image_base64": base64.b64encode(images[0]).decode()}], "coverage": 0.5}
    resp = stack.client.post("/v1/models/ink/predict", headers=auth(stack.key_a), json=body)
    assert resp.status_code == 200, resp.text
    narrow = _assert_interval(resp.json()["predictions"][0], 0.5)
    assert narrow <= wide[0]
    for coverage, code in ((1.5, None), (0.0, None), (0.9999, "coverage_unattainable")):
        body["coverage"] = coverage
        resp = stack.client.post("/v1/models/ink/predict", headers=auth(stack.key_a), json=body)
        assert resp.status_code == 422, resp.text
        if code:
            problem(resp, 422, code)


def test_text_regression_with_two_targets_and_only_the_required_fields(
    stack: Stack, tmp_path: Path
) -> None:
    texts = _tweets_scores_csv(tmp_path / "scores.csv")
    dataset = _upload(
        stack, tmp_path / "scores.csv", task="text_regression", target_column="sentiment,words"
    )
    assert dataset["targets"] == ["sentiment", "words"]
    stats = dataset["report"]
    assert stats["num_examples"] == 80
    job = create_job(stack.client, stack.key_a, dataset["id"], "scores", backbone=TINY_TEXT_ID)
    job = wait_for_job(stack.client, stack.key_a, job["id"])
    version = _version(stack, job)
    assert version["method_chosen"] in ("classical", "linear_probe", "full")
    assert version["method_reason"]
    assert set(version["metrics"]["per_target"]) == {"sentiment", "words"}

    resp = stack.client.post(
        "/v1/models/scores/predict", headers=auth(stack.key_a), json={"inputs": texts}
    )
    assert resp.status_code == 200, resp.text
    for prediction in resp.json()["predictions"]:
        assert prediction["targets"] == ["sentiment", "words"]
        assert len(prediction["value"]) == 2 and len(prediction["interval"]) == 2
        for value, (low, high) in zip(prediction["value"], prediction["interval"], strict=True):
            assert low <= value <= high


@pytest.mark.parametrize("labels_per_text", [2])
def test_multilabel_text_trains_and_predicts_label_sets(
    stack: Stack, tmp_path: Path, labels_per_text: int
) -> None:
    pairs = tweets(80)
    path = tmp_path / "multi.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        for text, label in pairs:
            extra = "long" if len(text.split()) > 12 else "short"
            writer.writerow([text, f"{label}|{extra}"])
    dataset = _upload(stack, path, task="text_classification", multilabel="true")
    assert dataset["multilabel"] is True
    assert set(dataset["labels"]) == {"negative", "neutral", "positive", "long", "short"}
    job = create_job(
        stack.client, stack.key_a, dataset["id"], "multi", backbone=TINY_TEXT_ID,
        method="linear_probe",
    )  # fmt: skip
    version = _version(stack, wait_for_job(stack.client, stack.key_a, job["id"]))
    assert version["metrics"]["calibration"]["temperature"] > 0
    texts = [text for text, _ in pairs[:labels_per_text]]
    resp = stack.client.post(
        "/v1/models/multi/predict", headers=auth(stack.key_a), json={"inputs": texts}
    )
    assert resp.status_code == 200, resp.text
    for prediction in resp.json()["predictions"]:
        assert set(prediction["labels"]) <= set(dataset["labels"])
        assert "label" not in prediction and len(prediction["scores"]) == 5
