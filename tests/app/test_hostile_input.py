"""Hostile input against a real `hone api` process, on both databases: integers no column can
hold, NUL in URLs, oversized request heads, long Authorization values, stalled bodies, clients
that leave mid-upload, and what /metrics tells whom."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.auth.keys import authenticate, create_key
from app.bounds import INT_MAX
from app.db import make_engine, make_session_factory, transaction
from app.http_server import MAX_HEAD_BYTES, MAX_HEADERS
from app.main import create_app
from app.models import Job, JobEvent, ModelVersion, RegisteredModel
from app.ops.guards import MAX_JSON_BODY_BYTES
from app.ops.metrics import ApiMetrics
from tests.support.api_process import ApiProcess
from tests.support.stack import Backend, wait_until
from tests.support.storage import leftover_uploads

MODEL = "hostile-model"
BODY_TIMEOUT = 1.0
HUGE = (2**31, 2**63, 99999999999999999999)


@dataclass
class Hostile:
    api: ApiProcess
    key: str
    job_id: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **extra}


def _seed(backend: Backend) -> tuple[str, str]:
    """A key, and rows to aim at: a finished job with an event, a model with a ready version."""
    engine = make_engine(backend.settings().sqlalchemy_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            key = create_key(session, "hostile")
            project = authenticate(session, key)
            assert project is not None
            job = Job(
                project_id=project.id,
                dataset_id="ds_gone",
                backbone="tiny_text",
                model_name=MODEL,
                status="succeeded",
            )
            model = RegisteredModel(
                project_id=project.id, name=MODEL, task="text_classification", last_version=1
            )
            session.add_all([job, model])
            session.flush()
            session.add(JobEvent(job_id=job.id, message="done"))
            session.add(
                ModelVersion(
                    model_id=model.id,
                    version=1,
                    status="ready",
                    task="text_classification",
                    labels=["a", "b"],
                    backbone="tiny_text",
                    artifact_uri="file:///nowhere",
                )
            )
            return key, job.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def hostile(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    key, job_id = _seed(backend)
    log = tmp_path_factory.mktemp("hostile") / "api.log"
    api = ApiProcess(backend, log, HONE_BODY_READ_TIMEOUT_SECONDS=str(BODY_TIMEOUT)).start()
    try:
        yield Hostile(api, key, job_id)
    finally:
        api.stop()
    assert "Traceback" not in api.log(), api.log()[-4000:]


@dataclass
class RawReply:
    status: int
    head: str
    body: bytes
    closed: bool  # the server closed the connection after answering


def raw_exchange(port: int, request: bytes, *, timeout: float = 15) -> RawReply:
    """Send `request` on a fresh connection (from a thread, so a server that answers before
    reading it all is seen answering) and read until the server closes or `timeout` passes."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send() -> None:
        # The server may refuse and close mid-request: what these tests are about.
        with contextlib.suppress(OSError):
            sock.sendall(request)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data, closed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        closed = closed or bool(data)
    finally:
        sock.close()
        sender.join(timeout=timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return RawReply(status, head.decode("latin-1"), body, closed)


def _problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, (resp.request.url, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status and (code is None or body["code"] == code), body
    return body


def test_integers_no_column_can_hold_are_422_on_every_edge(hostile: Hostile) -> None:
    client = httpx.Client(base_url=hostile.api.url, headers=hostile.headers(), timeout=30)
    events = f"/v1/jobs/{hostile.job_id}/events"
    for n in HUGE:
        for resp in (
            client.get(f"/v1/models/{MODEL}/versions/{n}"),
            client.delete(f"/v1/models/{MODEL}/versions/{n}"),
            client.put(f"/v1/models/{MODEL}/aliases/production", json={"version": n}),
            client.get(events, params={"after": n}),
            client.get(events, headers={"Last-Event-ID": str(n)}),
            client.get(events, headers={"Last-Event-ID": str(n), "Accept": "text/event-stream"}),
            client.get("/v1/models", params={"limit": n}),
            client.get("/v1/jobs", params={"limit": n}),
            client.get(f"/v1/datasets?limit={n}"),
            client.post(
                "/v1/jobs",
                json={"dataset_id": "ds_x", "backbone": "tiny_text", "model_name": "m", "seed": n},
            ),
        ):
            _problem(resp, 422, "validation_error")
    # The largest storable number is an ordinary miss, on both databases.
    _problem(client.get(f"/v1/models/{MODEL}/versions/{INT_MAX}"), 404, "version_not_found")
    _problem(
        client.put(f"/v1/models/{MODEL}/aliases/production", json={"version": INT_MAX}),
        404,
        "version_not_found",
    )
    page = client.get(events, params={"after": INT_MAX})
    assert page.status_code == 200 and [e["message"] for e in page.json()["data"]] == ["done"]
    assert client.get(f"/v1/models/{MODEL}/versions/1").json()["version"] == 1
    # A hyperparameter past the bound is judged as the number it is, not stored.
    resp = client.post(
        "/v1/jobs",
        json={
            "dataset_id": "ds_x",
            "backbone": "tiny_text",
            "model_name": "m",
            "hyperparameters": {"epochs": 2**64},
        },
    )
    _problem(resp, 422, "invalid_hyperparameters")


def test_nul_in_a_url_is_400_before_any_query(hostile: Hostile) -> None:
    client = httpx.Client(base_url=hostile.api.url, headers=hostile.headers(), timeout=30)
    for path in (
        "/v1/datasets/ds%00x",
        "/v1/datasets?after=%00",
        "/v1/jobs/job%00",
        f"/v1/models/{MODEL}%00/versions/1",
        "/v1/jobs?model_name=a%00b",
    ):
        _problem(client.get(path), 400, "nul_in_url")


def test_oversized_request_heads_get_431_and_the_server_stays_up(hostile: Hostile) -> None:
    port = hostile.api.port
    huge_value = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
    huge_value += b"a" * (32 * 1024 * 1024) + b"\r\n\r\n"
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    many += b"".join(b"x-h%d: v\r\n" % i for i in range(100_000)) + b"\r\n"
    long_line = b"GET /healthz?" + b"q" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    for request in (huge_value, many, long_line):
        started = time.monotonic()
        reply = raw_exchange(port, request)
        assert reply.status == 431, reply.head
        assert "application/problem+json" in reply.head and b'"status": 431' in reply.body
        assert reply.closed
        # Refused as it arrived: 32 MB are not read first.
        assert time.monotonic() - started < 5
    # Just inside the bounds is an ordinary request.
    fields = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 60) for i in range(MAX_HEADERS - 2))
    reply = raw_exchange(
        port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n"
    )
    assert reply.status == 200, reply.head
    assert httpx.get(f"{hostile.api.url}/healthz").status_code == 200


def test_an_authorization_longer_than_any_key_is_401_at_the_edge(hostile: Hostile) -> None:
    long_key = "hone_" + "a" * 300
    resp = httpx.get(
        f"{hostile.api.url}/v1/datasets", headers={"Authorization": f"Bearer {long_key}"}
    )
    body = _problem(resp, 401, "invalid_api_key")
    assert "longer than any API key" in body["detail"]
    assert resp.headers["www-authenticate"] == "Bearer"
    # A key of a usable length still goes through the ordinary lookup.
    resp = httpx.get(
        f"{hostile.api.url}/v1/datasets", headers={"Authorization": "Bearer " + "b" * 256}
    )
    assert "longer than any" not in _problem(resp, 401, "invalid_api_key")["detail"]


def _upload_head(key: str, length: int) -> bytes:
    return (
        b"POST /v1/datasets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + key.encode()
        + b"\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: "
        + str(length).encode()
        + b"\r\n\r\n--XX\r\nContent-Disposition: form-data; "
        b'name="task"\r\n\r\ntext_classification\r\n--XX\r\nContent-Disposition: form-data; '
        b'name="file"; filename="a.csv"\r\n\r\ntext,label\n'
    )


def _uploads_left(backend: Backend) -> list[str]:
    return leftover_uploads(backend)


def test_a_stalled_body_gets_408_and_its_connection_is_released(
    hostile: Hostile, backend: Backend
) -> None:
    job = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + hostile.key.encode()
        + b'\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"dataset_id":'
    )
    upload = _upload_head(hostile.key, 1_000_000) + b"a,b\n" * 1000
    for request in (job, upload):
        started = time.monotonic()
        reply = raw_exchange(hostile.api.port, request, timeout=BODY_TIMEOUT + 20)
        assert reply.status == 408, reply.head
        assert b'"code":"request_timeout"' in reply.body
        assert "connection: close" in reply.head.lower() and reply.closed
        assert time.monotonic() - started < BODY_TIMEOUT + 10
    wait_until(lambda: not _uploads_left(backend), timeout=10, what="upload scratch removed")


def _metric_lines(api: ApiProcess, name: str) -> list[str]:
    text = httpx.get(f"{api.url}/metrics").text
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_a_client_leaving_mid_upload_is_499_not_a_server_error(
    hostile: Hostile, backend: Backend
) -> None:
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", hostile.api.port))
        sock.sendall(_upload_head(hostile.key, 50_000_000) + b"a,b\n" * 250_000)
        # Gone once the server is reading the body: its scratch folder exists.
        wait_until(lambda: _uploads_left(backend), timeout=10, what="upload started")
        sock.close()
        wait_until(lambda: not _uploads_left(backend), timeout=10, what="upload scratch removed")

    def closed() -> list[str]:
        return [
            line
            for line in _metric_lines(hostile.api, "hone_http_requests_total")
            if 'route="/v1/datasets"' in line and 'status="499"' in line
        ]

    wait_until(closed, timeout=10, what="499 in /metrics")
    assert closed()[0].endswith(" 3.0"), closed()
    requests = _metric_lines(hostile.api, "hone_http_requests_total")
    assert not [line for line in requests if 'status="5' in line], requests
    log = hostile.api.log()
    assert "client closed the request" in log
    assert "Traceback" not in log and '"level": "error"' not in log, log[-3000:]


def test_options_and_wrong_methods_answer_405_with_every_allowed_method(hostile: Hostile) -> None:
    client = httpx.Client(base_url=hostile.api.url, headers=hostile.headers(), timeout=30)
    for path, allowed in (
        ("/v1/datasets/ds_x", "DELETE, GET"),
        (f"/v1/models/{MODEL}/aliases/a", "DELETE, PUT"),
        ("/v1/jobs", "GET, POST"),
    ):
        resp = client.options(path)
        _problem(resp, 405, "method_not_allowed")
        assert resp.headers["allow"] == allowed, path


def test_metrics_name_route_templates_and_no_model(hostile: Hostile) -> None:
    client = httpx.Client(base_url=hostile.api.url, headers=hostile.headers(), timeout=30)
    assert client.get(f"/v1/models/{MODEL}").status_code == 200
    client.request("PURGE", "/v1/models")  # an unusual method must not become a label
    text = httpx.get(f"{hostile.api.url}/metrics").text
    assert 'route="/v1/models/{name}"' in text
    assert MODEL not in text and "PURGE" not in text
    assert 'method="OTHER"' in text
    # What the prediction code reports per model is kept, as totals over every model.
    metrics = ApiMetrics()
    metrics.batch_size.labels(f"{MODEL}:1").observe(4)
    metrics.rejected.labels(f"{MODEL}:2").inc()
    exposed = metrics_text(metrics)
    assert "hone_predict_batch_size_count 1.0" in exposed
    assert "hone_predict_rejected_total 1.0" in exposed and MODEL not in exposed


def metrics_text(metrics: ApiMetrics) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()


def test_metrics_token_guards_metrics_when_set(backend: Backend) -> None:
    token = "t" * 40
    app = create_app(backend.settings(metrics_token=token))
    with TestClient(app) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            resp = client.get("/metrics", headers=headers)
            assert resp.status_code == 401 and resp.json()["code"] == "invalid_metrics_token"
            assert resp.headers["www-authenticate"] == "Bearer"
        resp = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        assert "hone_http_requests_total" in resp.text
        assert client.get("/healthz").status_code == 200  # nothing else needs the token
    with TestClient(create_app(backend.settings())) as client:
        assert client.get("/metrics").status_code == 200  # unset: open, as before


def test_json_bodies_outside_uploads_and_predictions_are_capped(hostile: Hostile) -> None:
    """A job, alias or key body is a few KiB: a huge one is refused, declared or streamed."""
    api = hostile.api
    big = b'{"dataset_id": "' + b"x" * (MAX_JSON_BODY_BYTES + 10) + b'"}'
    headers = {"Authorization": f"Bearer {hostile.key}", "content-type": "application/json"}
    declared = httpx.post(f"{api.url}/v1/jobs", content=big, headers=headers, timeout=30)
    assert declared.status_code == 413, declared.text
    assert declared.headers["content-type"].startswith("application/problem+json")
    streamed = httpx.post(
        f"{api.url}/v1/jobs",
        content=iter([big[i : i + 65536] for i in range(0, len(big), 65536)]),
        headers=headers,
        timeout=30,
    )
    assert streamed.status_code == 413, streamed.text
    assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
