"""The datasets API end to end: real worker, real database, on both backends."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from tests.conftest import Stack
from tests.factories.uploads import digits_zip, tweets_csv
from tests.support.storage import leftover_uploads, storage_of


def _png(color: tuple[int, int, int] = (200, 10, 10), size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _post(
    stack: Stack, filename: str, data: bytes, task: str, key: str | None = None, **fields: str
) -> object:
    return stack.client.post(
        "/v1/datasets",
        headers=stack.headers(key),
        files={"file": (filename, data)},
        data={"task": task, **fields},
    )


def _problem(resp: object, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["status"] == status and body["code"] == code, body
    assert body["detail"]
    return body


def _no_leftovers(stack: Stack) -> None:
    assert leftover_uploads(stack.backend) == []


def test_image_zip_with_label_folders_is_audited(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "digits.zip"
    counts = digits_zip(path, per_class=12)
    resp = _post(stack, "digits.zip", path.read_bytes(), "image_classification", name="digits")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["object"] == "dataset" and body["id"].startswith("ds_")
    assert body["status"] == "ready" and body["name"] == "digits"
    assert body["label_counts"] == counts
    assert body["num_examples"] == sum(counts.values())
    assert body["labels"] == sorted(counts)
    assert len(body["sha256"]) == 64
    report = body["report"]
    assert report["label_counts"] == counts
    assert report["imbalance_ratio"] == pytest.approx(1.0)
    assert report["skipped"] == []
    again = stack.client.get(f"/v1/datasets/{body['id']}", headers=stack.headers())
    assert again.status_code == 200 and again.json() == body
    stored = storage_of(stack.backend).dataset_dir(body["sha256"])
    assert (stored / "manifest.json").is_file()
    _no_leftovers(stack)


def test_text_csv_of_real_tweets_is_audited(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    counts = tweets_csv(path, 300)
    resp = _post(stack, "tweets.csv", path.read_bytes(), "text_classification")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    report = body["report"]
    kept = report["num_examples"]
    dupes = sum(len(d["sources"]) - 1 for d in report["exact_duplicates"])
    skipped = len(report["skipped"])
    assert kept + dupes + skipped == sum(counts.values())
    assert set(body["labels"]) <= set(counts)
    for label, n in body["label_counts"].items():
        assert n <= counts[label]


def test_same_dataset_is_content_addressed(stack: Stack, tmp_path: Path) -> None:
    data = _zip(
        {
            f"{c}/{i}.png": _png((i * 40, 0, 0) if c == "a" else (0, i * 40, 0))
            for c in "ab"
            for i in range(3)
        }
    )
    first = _post(stack, "x.zip", data, "image_classification").json()
    second = _post(stack, "x.zip", data, "image_classification").json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]


def test_idempotency_key_returns_the_first_dataset(stack: Stack) -> None:
    data = b"text,label\ngood day,pos\nbad day,neg\nfine day,pos\nawful day,neg\n"
    headers = {**stack.headers(), "Idempotency-Key": "upload-1"}
    files = {"file": ("t.csv", data)}
    first = stack.client.post(
        "/v1/datasets", headers=headers, files=files, data={"task": "text_classification"}
    )
    second = stack.client.post(
        "/v1/datasets", headers=headers, files=files, data={"task": "text_classification"}
    )
    assert first.status_code == 201 and second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    other = stack.client.post(
        "/v1/datasets",
        headers=headers,
        files={"file": ("t.csv", data + b"ok day,pos\n")},
        data={"task": "text_classification"},
    )
    _problem(other, 422, "idempotency_key_reused")


def test_list_pages_newest_first_and_delete(stack: Stack) -> None:
    ids = []
    for i in range(3):
        data = f"text,label\nitem {i} one,a\nitem {i} two,b\nitem {i} three,a\nitem {i} 4,b\n"
        ids.append(_post(stack, "t.csv", data.encode(), "text_classification").json()["id"])
    page1 = stack.client.get("/v1/datasets?limit=2", headers=stack.headers()).json()
    assert page1["object"] == "list" and page1["has_more"] is True
    assert [d["id"] for d in page1["data"]] == ids[::-1][:2]
    page2 = stack.client.get(
        f"/v1/datasets?limit=2&after={page1['data'][-1]['id']}", headers=stack.headers()
    ).json()
    assert page2["data"][0]["id"] == ids[0]
    resp = stack.client.delete(f"/v1/datasets/{ids[0]}", headers=stack.headers())
    assert resp.status_code == 200 and resp.json()["deleted"] is True
    _problem(
        stack.client.get(f"/v1/datasets/{ids[0]}", headers=stack.headers()),
        404,
        "dataset_not_found",
    )


def test_other_project_gets_404_everywhere(stack: Stack) -> None:
    data = b"text,label\nhello there,a\nbye now,b\nhi again,a\nsee you,b\n"
    ds = _post(stack, "t.csv", data, "text_classification").json()["id"]
    b = stack.headers(stack.key_b)
    _problem(stack.client.get(f"/v1/datasets/{ds}", headers=b), 404, "dataset_not_found")
    _problem(stack.client.delete(f"/v1/datasets/{ds}", headers=b), 404, "dataset_not_found")
    listed = stack.client.get("/v1/datasets?limit=100", headers=b).json()["data"]
    assert ds not in {d["id"] for d in listed}
    assert stack.client.get(f"/v1/datasets/{ds}", headers=stack.headers()).status_code == 200


def test_missing_or_invalid_key_is_401(stack: Stack) -> None:
    _problem(stack.client.get("/v1/datasets"), 401, "unauthorized")
    resp = stack.client.get("/v1/datasets", headers={"Authorization": "Bearer hone_nope"})
    _problem(resp, 401, "invalid_api_key")
    forged = stack.key_a[:-4] + "AAAA"
    _problem(
        stack.client.get("/v1/datasets", headers={"Authorization": f"Bearer {forged}"}),
        401,
        "invalid_api_key",
    )


def _symlink_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/1.png", _png())
        zf.writestr("b/1.png", _png((0, 0, 200)))
        info = zipfile.ZipInfo("a/link.png")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _lying_zip_bomb() -> bytes:
    """An entry that inflates to 64 MiB while its header declares a few bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/1.png", _png())
        zf.writestr("b/bomb.png", b"\0" * (64 * 1024 * 1024))
    raw = bytearray(buf.getvalue())
    # Patch the declared uncompressed size of b/bomb.png in the central directory.
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.getinfo("b/bomb.png")
    cd = raw.rfind(b"PK\x01\x02", 0, len(raw))
    assert raw[cd + 46 : cd + 46 + len(info.filename)] == info.filename.encode()
    raw[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    local = info.header_offset
    raw[local + 22 : local + 26] = (100).to_bytes(4, "little")
    return bytes(raw)


def _pixel_bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")
    return buf.getvalue()


BAD_INPUTS = [
    (
        "zip-slip",
        "x.zip",
        lambda: _zip({"../evil/1.png": _png(), "b/1.png": _png()}),
        "image_classification",
        {},
        400,
        "unsafe_archive_path",
    ),
    (
        "absolute-path",
        "x.zip",
        lambda: _zip({"/tmp/evil.png": _png(), "b/1.png": _png()}),
        "image_classification",
        {},
        400,
        "unsafe_archive_path",
    ),
    ("symlink", "x.zip", _symlink_zip, "image_classification", {}, 400, "archive_symlink"),
    ("zip-bomb", "x.zip", _lying_zip_bomb, "image_classification", {}, 413, "archive_too_large"),
    (
        "not-a-zip",
        "x.zip",
        lambda: b"this is not a zip file at all",
        "image_classification",
        {},
        400,
        "not_a_zip",
    ),
    (
        "non-utf8-csv",
        "t.csv",
        lambda: "text,label\ncaf\xe9 au lait,a\nthé,b\n".encode("latin-1"),
        "text_classification",
        {},
        400,
        "bad_encoding",
    ),
    (
        "missing-column",
        "t.csv",
        lambda: b"body,label\nhello,a\nbye,b\n",
        "text_classification",
        {},
        422,
        "missing_column",
    ),
    (
        "single-label",
        "t.csv",
        lambda: b"text,label\nhello,a\nbye,a\nagain,a\n",
        "text_classification",
        {},
        422,
        "single_label",
    ),
    ("empty-upload", "t.csv", lambda: b"", "text_classification", {}, 400, "empty_upload"),
    (
        "image-zip-as-text",
        "x.zip",
        lambda: _zip({"a/1.png": _png(), "b/1.png": _png()}),
        "text_classification",
        {},
        422,
        "wrong_task",
    ),
    (
        "csv-as-images",
        "t.csv",
        lambda: b"text,label\nhello,a\nbye,b\n",
        "image_classification",
        {},
        422,
        "wrong_task",
    ),
    (
        "unknown-task",
        "t.csv",
        lambda: b"text,label\nhello,a\nbye,b\n",
        "regression",
        {},
        422,
        "invalid_task",
    ),
    (
        "unsupported-type",
        "t.docx",
        lambda: b"PK\x03\x04 not really",
        "text_classification",
        {},
        415,
        "unsupported_file_type",
    ),
]


@pytest.mark.parametrize(
    ("name", "filename", "make", "task", "fields", "status", "code"),
    BAD_INPUTS,
    ids=[b[0] for b in BAD_INPUTS],
)
def test_bad_input_is_a_clear_4xx_and_leaves_nothing(
    stack: Stack,
    name: str,
    filename: str,
    make: object,
    task: str,
    fields: dict[str, str],
    status: int,
    code: str,
) -> None:
    store = storage_of(stack.backend).store
    before = store.list("datasets")
    resp = _post(stack, filename, make(), task, **fields)  # type: ignore[operator]
    body = _problem(resp, status, code)
    if code == "missing_column":
        assert "body" in body["detail"] and "label" in body["detail"]
    assert store.list("datasets") == before
    _no_leftovers(stack)


def test_bom_prefixed_csv_is_accepted(stack: Stack) -> None:
    data = "\ufefftext,label\nhello there,a\nbye now,b\nhi again,a\nsee you,b\n".encode()
    resp = _post(stack, "t.csv", data, "text_classification")
    assert resp.status_code == 201, resp.text
    assert resp.json()["label_counts"] == {"a": 2, "b": 2}


def test_corrupt_and_oversized_images_are_skipped_with_reasons(stack: Stack) -> None:
    entries = {
        f"{c}/{i}.png": _png((i * 30, 50, 0) if c == "a" else (0, 50, i * 30))
        for c in "ab"
        for i in range(1, 5)
    }
    entries["a/fake.jpg"] = b"definitely not a jpeg"
    entries["b/notes.txt"] = b"some notes"
    entries["b/empty.png"] = b""
    entries["a/huge.png"] = _pixel_bomb()
    resp = _post(stack, "x.zip", _zip(entries), "image_classification")
    assert resp.status_code == 201, resp.text
    report = resp.json()["report"]
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert reasons == {
        "a/fake.jpg": "corrupt",
        "b/notes.txt": "unsupported_type",
        "b/empty.png": "empty_file",
        "a/huge.png": "too_large",
    }
    assert report["label_counts"] == {"a": 4, "b": 4}


def test_duplicates_and_conflicts_are_reported(stack: Stack) -> None:
    data = (
        b"text,label\nthe same text,a\nthe same text,a\nconflicted one,a\n"
        b"conflicted one,b\nother,b\nanother,a\n"
    )
    report = _post(stack, "t.csv", data, "text_classification").json()["report"]
    assert len(report["exact_duplicates"]) == 1
    assert len(report["conflicting_duplicates"]) == 1
    assert report["warnings"]


def test_upload_over_the_limit_is_413_and_leaves_nothing(stack: Stack) -> None:
    app = create_app(stack.backend.settings(max_upload_bytes=4096))
    with TestClient(app) as client:
        resp = client.post(
            "/v1/datasets",
            headers=stack.headers(),
            files={"file": ("big.csv", b"text,label\n" + b"x" * 20000 + b",a\n")},
            data={"task": "text_classification"},
        )
    _problem(resp, 413, "upload_too_large")
    _no_leftovers(stack)


def test_multipart_is_required(stack: Stack) -> None:
    resp = stack.client.post("/v1/datasets", headers=stack.headers(), json={"task": "x"})
    _problem(resp, 415, "multipart_required")
    resp = stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        data={"task": "text_classification"},
        files={"other": ("a.txt", b"x")},
    )
    _problem(resp, 422, "unexpected_file_part")
