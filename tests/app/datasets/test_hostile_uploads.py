"""Hostile multipart uploads: part names never become paths, every byte of the body counts
against the cap, bounded parts and headers, and a body cut off is said to be cut off. On both
backends, with nothing left behind and nothing written outside the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import Stack
from tests.support.storage import leftover_uploads

BOUNDARY = "hone-test-boundary"
CSV = b"text,label\nthe parcel came late,late\nthe parcel came early,early\nlate again,late\n"


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def _body(*parts: bytes, close: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if close else b"")


def _post(client: TestClient, stack: Stack, body: bytes) -> object:
    return client.post(
        "/v1/datasets",
        content=body,
        headers={
            **stack.headers(),
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


def _problem(resp: object, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    assert resp.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["code"] == code and body["detail"], body
    return body


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def clean(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs the request from an empty working directory, which must stay empty."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "name", ["../../escape", "a/b", "x\x00y", "n" * 300, "file/../../x", "..", ""]
)
def test_a_file_part_name_never_becomes_a_path(stack: Stack, clean: Path, name: str) -> None:
    data_dir = stack.backend.data_dir
    before = _files_under(data_dir.parent)
    resp = _post(
        stack.client,
        stack,
        _body(_part("task", b"text_classification"), _part(name, CSV, "t.csv")),
    )
    body = _problem(resp, 422, "unexpected_file_part")
    assert len(body["detail"]) < 400
    assert list(clean.iterdir()) == []
    after = _files_under(data_dir.parent)
    # Only the embedded database's own files may change; nothing new anywhere else.
    assert {p for p in after - before if "hone.db" not in p} == set()


def test_unknown_fields_are_ignored_and_known_ones_read(stack: Stack, clean: Path) -> None:
    resp = _post(
        stack.client,
        stack,
        _body(
            _part("task", b"text_classification"),
            _part("../weird\x00name", b"ignored"),
            _part("name", b"parcels"),
            _part("file", CSV, "t.csv"),
        ),
    )
    assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    assert resp.json()["name"] == "parcels"  # type: ignore[attr-defined]
    assert list(clean.iterdir()) == []


def test_fields_count_against_the_upload_cap(stack: Stack) -> None:
    """10 MB of form fields under a 1 MiB cap used to be read into memory and accepted."""
    app = create_app(stack.backend.settings(max_upload_bytes=1024**2))
    with TestClient(app, raise_server_exceptions=False) as client:
        many = _body(
            _part("task", b"text_classification"),
            *(_part(f"f{i}", b"v" * 60_000) for i in range(170)),
            _part("file", CSV, "t.csv"),
        )
        assert len(many) > 10_000_000
        _problem(_post(client, stack, many), 413, "upload_too_large")
        # Without a Content-Length to refuse early, the body is counted as it arrives.
        resp = client.post(
            "/v1/datasets",
            content=iter([many[i : i + 65536] for i in range(0, len(many), 65536)]),
            headers={
                **stack.headers(),
                "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        assert resp.status_code in (400, 413), resp.text
        assert resp.json()["code"] in ("too_many_parts", "upload_too_large")
        big_field = _body(_part("task", b"text_classification"), _part("name", b"n" * 200_000))
        _problem(_post(client, stack, big_field), 400, "bad_request")
    assert leftover_uploads(stack.backend) == []


def test_too_many_parts_and_huge_part_headers_are_refused(stack: Stack) -> None:
    parts = [_part(f"f{i}", b"x") for i in range(40)]
    _problem(_post(stack.client, stack, _body(*parts)), 400, "too_many_parts")
    # python-multipart bounds a part's header lines and their size.
    padding = "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(30))
    huge = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="task"\r\n{padding}\r\n'
        "text_classification\r\n"
    ).encode()
    body = _problem(_post(stack.client, stack, _body(huge)), 400, "malformed_multipart")
    assert "header" in body["detail"]


def test_a_body_cut_off_is_said_to_be_cut_off(stack: Stack) -> None:
    full = _body(_part("task", b"text_classification"), _part("file", CSV, "t.csv"))
    for cut in (len(full) - 5, len(full) // 2, 60):
        body = _problem(_post(stack.client, stack, full[:cut]), 400, "truncated_body")
        assert "cut off" in body["detail"] and "file" not in body["detail"].split("cut off")[0]
    assert leftover_uploads(stack.backend) == []


def test_a_refusal_after_reading_says_what_was_dropped(stack: Stack) -> None:
    """Rows whose label is 10,000 characters were dropped silently, then the upload was
    refused as "single label" with `report: null`."""
    rows = "".join(
        f"parcel message number {i} about the delivery,{'positive' if i % 2 else 'x' * 10_000}\n"
        for i in range(12)
    )
    resp = stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        files={"file": ("t.csv", ("text,label\n" + rows).encode())},
        data={"task": "text_classification"},
    )
    body = _problem(resp, 422, "single_label")
    assert "6 examples were skipped" in body["detail"] and "invalid_label" in body["detail"]
    report = body["dataset"]["report"]
    assert report["skipped_counts"] == {"invalid_label": 6}
    assert {s["reason"] for s in report["skipped"]} == {"invalid_label"}
    assert report["label_counts"] == {"positive": 6}
    listed = stack.client.get(f"/v1/datasets/{body['dataset']['id']}", headers=stack.headers())
    assert listed.json()["status"] == "failed" and listed.json()["report"] == report


def test_header_and_field_values_no_column_can_hold_are_refused(stack: Stack) -> None:
    """A 300-character Idempotency-Key (the column holds 200) and a NUL in the name field
    were 500s on PostgreSQL."""
    resp = stack.client.post(
        "/v1/datasets",
        headers={**stack.headers(), "Idempotency-Key": "k" * 300},
        files={"file": ("t.csv", CSV)},
        data={"task": "text_classification"},
    )
    assert resp.status_code == 422, resp.text
    body = _body(
        _part("task", b"text_classification"),
        _part("name", b"a\x00b"),
        _part("file", CSV, "t.csv"),
    )
    _problem(_post(stack.client, stack, body), 422, "invalid_field")
