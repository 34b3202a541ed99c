"""Operations endpoints and the backbone catalog, on a running stack."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import Stack

CONTRACT_PATHS = [
    "/v1/datasets",
    "/v1/datasets/{dataset_id}",
    "/v1/backbones",
    "/v1/jobs",
    "/v1/jobs/{job_id}",
    "/v1/jobs/{job_id}/cancel",
    "/v1/jobs/{job_id}/events",
    "/v1/models",
    "/v1/models/{name}",
    "/v1/models/{name}/versions/{version}",
    "/v1/models/{name}/versions/{version}/artifact",
    "/v1/models/{name}/aliases/{alias}",
    "/v1/models/{name}/predict",
]


def test_health_ready_metrics_docs_and_request_ids(stack: Stack) -> None:
    client = stack.client
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
    resp = client.get("/v1/datasets", headers={**stack.headers(), "X-Request-ID": "trace-42"})
    assert resp.headers["x-request-id"] == "trace-42"
    assert client.get("/healthz").headers["x-request-id"].startswith("req_")
    metrics = client.get("/metrics").text
    assert 'hone_http_requests_total{method="GET",route="/v1/datasets",status="200"}' in metrics
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert all(p in paths for p in CONTRACT_PATHS), set(CONTRACT_PATHS) - set(paths)


def test_readyz_is_503_when_the_broker_is_unreachable(stack: Stack) -> None:
    settings = stack.backend.settings(broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        resp = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert resp.status_code == 503
    body = resp.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["storage"] == "ok"
    assert body["checks"]["broker"].startswith("unavailable")


def test_backbone_catalog_lists_offline_and_hub_backbones(stack: Stack) -> None:
    resp = stack.client.get("/v1/backbones", headers=stack.headers())
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    entries = {b["id"]: b for b in body["data"]}
    lite0, minilm = entries["efficientnet_lite0"], entries["minilm_l6"]
    assert lite0["object"] == "backbone" and lite0["modality"] == "image"
    assert lite0["library"] == "timm" and lite0["input_size"] == 224 and lite0["available"]
    assert minilm["modality"] == "text" and minilm["library"] == "transformers"
    assert minilm["max_length"] and minilm["available"] and minilm["license"]
    for hub in ("resnet50", "convnext_tiny", "bert-base-uncased"):
        assert hub in entries and entries[hub]["num_params"] > 1_000_000
    assert stack.client.get("/v1/backbones").status_code == 401
