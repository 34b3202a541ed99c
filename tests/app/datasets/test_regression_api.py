"""Regression datasets through the API, with a real worker, on both backends: uploads become
`ready` with their targets and audit, and uploads meant for the other family are refused with
the task that fits."""

from __future__ import annotations

import io
import random
import zipfile
from typing import Any

import pytest
from PIL import Image

from tests.conftest import Stack
from tests.support.storage import leftover_uploads, storage_of


def _post(stack: Stack, filename: str, data: bytes, task: str, **fields: str) -> Any:
    return stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        files={"file": (filename, data)},
        data={"task": task, **fields},
    )


def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == status and body["code"] == code, body
    return body


def _reviews_csv(n: int = 80) -> tuple[bytes, list[float]]:
    rng = random.Random(3)
    words = ["good", "bad", "fine", "great", "awful", "plain", "nice", "poor"]
    stars = [round(rng.uniform(1, 5), 2) for _ in range(n)]
    rows = [f"{' '.join(rng.choice(words) for _ in range(5))} {i},{s}" for i, s in enumerate(stars)]
    return ("review,price\n" + "\n".join(rows) + "\n").encode(), stars


def _png(grey: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (36, 36), (grey, grey // 2, 255 - grey)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_text_regression_csv_becomes_ready_with_its_audit(stack: Stack) -> None:
    data, stars = _reviews_csv()
    resp = _post(
        stack, "reviews.csv", data, "text_regression", text_column="review", target_column="price"
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "ready" and body["task"] == "text_regression"
    assert body["targets"] == ["price"] and body["labels"] == [] and body["label_counts"] == {}
    assert body["num_examples"] == len(stars) and body["multilabel"] is False
    stats = body["report"]["target_stats"]["price"]
    assert stats["count"] == len(stars)
    assert stats["mean"] == pytest.approx(sum(stars) / len(stars))
    assert (stats["min"], stats["max"]) == (min(stars), max(stars))
    assert sum(stats["histogram"]["counts"]) == len(stars)
    again = stack.client.get(f"/v1/datasets/{body['id']}", headers=stack.headers())
    assert again.status_code == 200 and again.json() == body
    stored = storage_of(stack.backend).dataset_dir(body["sha256"])
    assert (stored / "manifest.json").is_file()
    assert leftover_uploads(stack.backend) == []


def test_an_image_regression_zip_with_two_targets_becomes_ready(stack: Stack) -> None:
    rows = [(f"{i}.png", i * 10, (i * 7) % 13) for i in range(12)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "labels.csv", "filename,hue,size\n" + "".join(f"{f},{h},{s}\n" for f, h, s in rows)
        )
        for name, hue, _ in rows:
            archive.writestr(name, _png(hue))
    resp = _post(stack, "hues.zip", buffer.getvalue(), "image_regression", target_column="hue,size")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["targets"] == ["hue", "size"] and body["num_examples"] == 12
    assert body["report"]["target_stats"]["size"]["max"] == 12.0


def test_classification_datasets_have_no_targets(stack: Stack) -> None:
    data = b"text,label\ngood day,pos\nbad day,neg\nfine day,pos\nawful day,neg\n"
    body = _post(stack, "t.csv", data, "text_classification").json()
    assert body["targets"] is None and body["labels"] == ["neg", "pos"]


def test_measurements_uploaded_for_classification_name_the_regression_task(
    stack: Stack,
) -> None:
    data, _ = _reviews_csv()
    resp = _post(
        stack, "r.csv", data, "text_classification", text_column="review", label_column="price"
    )
    body = _problem(resp, 422, "wrong_task")
    assert "text_regression" in body["detail"] and "target_column=price" in body["detail"]
    assert body["dataset"]["status"] == "failed"
    assert body["dataset"]["report"]["num_labels"] > 20


def test_labels_uploaded_for_regression_name_the_classification_task(stack: Stack) -> None:
    data = "text,label\n" + "".join(
        f"sentence {i},{'pos' if i % 2 else 'neg'}\n" for i in range(30)
    )
    resp = _post(stack, "t.csv", data.encode(), "text_regression", target_column="label")
    body = _problem(resp, 422, "wrong_task")
    assert "text_classification" in body["detail"]
    assert body["dataset"]["report"]["skipped_counts"] == {"invalid_target": 30}


def test_a_folder_zip_for_image_regression_is_refused_before_it_is_stored(stack: Stack) -> None:
    store = storage_of(stack.backend).store
    before = store.list("datasets")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cat/1.png", _png(10))
        archive.writestr("dog/1.png", _png(200))
    body = _problem(_post(stack, "x.zip", buffer.getvalue(), "image_regression"), 422, "wrong_task")
    assert "image_classification" in body["detail"] and "dataset" not in body
    assert store.list("datasets") == before


def test_a_constant_target_fails_with_its_report(stack: Stack) -> None:
    data = b"text,target\none thing,3\nanother thing,3\na third,3\n"
    body = _problem(_post(stack, "t.csv", data, "text_regression"), 422, "constant_target")
    assert body["dataset"]["report"]["target_stats"]["target"]["distinct"] == 1


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"multilabel": "true"}, "multilabel_regression", "multilabel"),
        ({"target_column": "a,,b"}, "invalid_target_column", "target_column"),
        ({"target_column": "x" * 2001}, "invalid_field", "target_column"),
        ({"label_column": "x" * 201}, "invalid_field", "label_column"),
    ],
)
def test_options_a_regression_task_cannot_take_are_422(
    stack: Stack, fields: dict[str, str], code: str, field: str
) -> None:
    store = storage_of(stack.backend).store
    before = store.list("datasets")
    data = b"text,target\none,1\ntwo,2\n"
    body = _problem(_post(stack, "t.csv", data, "text_regression", **fields), 422, code)
    assert [e["field"] for e in body["errors"]] == [field]
    assert store.list("datasets") == before
    assert leftover_uploads(stack.backend) == []


def test_the_idempotency_key_covers_the_target_column(stack: Stack) -> None:
    data = b"text,a,b\none,1,5\ntwo,2,3\nthree,3,1\n"
    headers = {**stack.headers(), "Idempotency-Key": "regression-1"}

    def post(target_column: str) -> Any:
        return stack.client.post(
            "/v1/datasets",
            headers=headers,
            files={"file": ("t.csv", data)},
            data={"task": "text_regression", "target_column": target_column},
        )

    first = post("a")
    assert first.status_code == 201, first.text
    assert post("a").json()["id"] == first.json()["id"]
    _problem(post("b"), 422, "idempotency_key_reused")
