"""A regression version through POST /v1/models/{name}/predict: values with intervals at the
coverage each request asks for, and clear 422s for the coverages it cannot promise.

The version is registered the way the worker registers one (reserve, publish, mark ready),
with a tiny random-init artifact instead of a trained job, so the serving path is tested on
its own."""

from __future__ import annotations

import json
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from app.auth.keys import ensure_project
from app.db import make_engine, make_session_factory, transaction
from app.inference.schemas import PredictResponse
from app.registry.registration import NewVersion, mark_ready, reserve_version
from app.storage.places import Storage
from ml.inference import load_predictor
from ml.tasks import PredictOptions
from ml.tasks.regression.conformal import half_widths
from tests.app.inference.test_predict_api import _b64, _images, _problem
from tests.conftest import Stack
from tests.ml.inference.builders import regression_artifact

NAME = "prices"


def register(stack: Stack, artifact: Path, name: str, task: str) -> int:
    """A ready version of ``name`` in team-a's project, serving ``artifact``."""
    settings = stack.backend.settings()
    storage = Storage.from_settings(settings)
    engine = make_engine(settings.sqlalchemy_url)
    sessions = make_session_factory(engine)
    config = json.loads((artifact / "config.json").read_text())
    try:
        with transaction(sessions) as session:
            project = ensure_project(session, "team-a")
            new = NewVersion(
                project_id=project.id, name=name, task=task,
                job_id=f"job_{uuid.uuid4().hex[:20]}", dataset_id="ds_none", backbone="tiny",
                labels=config["targets"], metrics={}, manifest={}, runtime="torch",
            )  # fmt: skip
            row = reserve_version(session, new, partial(storage.version_uri, project.id, name))
            version_id, number, uri = row.id, row.version, row.artifact_uri
        storage.publish_version(artifact, uri)
        with transaction(sessions) as session:
            mark_ready(session, version_id)
    finally:
        engine.dispose()
    return number


@pytest.fixture(scope="module")
def price_model(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifact = regression_artifact(
        tmp_path_factory.mktemp("reg") / "v1", "image", ["price"], mean=[250.0], std=[40.0]
    )
    register(stack, artifact, NAME, "image_regression")
    return artifact


def _post(stack: Stack, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    headers = {**stack.headers(), **(headers or {})}
    return stack.client.post(f"/v1/models/{NAME}/predict", headers=headers, **kwargs)


def test_values_and_intervals_at_the_requested_coverage(stack: Stack, price_model: Path) -> None:
    images = _images(3)
    intervals = json.loads((price_model / "config.json").read_text())["intervals"]
    expected = load_predictor(price_model).predict(images)
    resp = _post(stack, json={"inputs": [_b64(b) for b in images]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    TypeAdapter(PredictResponse).validate_python(body)
    (q,) = half_widths(intervals, 0.9)
    for got, want in zip(body["predictions"], expected, strict=True):
        assert set(got) == {"value", "interval", "coverage"} and got["coverage"] == 0.9
        assert got["value"] == pytest.approx(want["value"], abs=1e-3)
        assert got["interval"] == pytest.approx([got["value"] - q, got["value"] + q])

    # Multipart: coverage is a form field beside top_k (which a regressor ignores).
    files = [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]
    resp = _post(stack, files=files, data={"coverage": "0.5", "top_k": "3"})
    assert resp.status_code == 200, resp.text
    (q_half,) = half_widths(intervals, 0.5)
    for got, want in zip(resp.json()["predictions"], expected, strict=True):
        assert got["coverage"] == 0.5
        low, high = got["interval"]
        assert high - low == pytest.approx(2 * q_half) and q_half < q
        assert got["value"] == pytest.approx(want["value"], abs=1e-3)
    alone = load_predictor(price_model).predict(images[:1], PredictOptions(coverage=0.5))
    np.testing.assert_allclose(resp.json()["predictions"][0]["interval"], alone[0]["interval"])


def test_a_coverage_it_cannot_promise_is_a_422_that_says_the_most(
    stack: Stack, price_model: Path
) -> None:
    body = {"inputs": [_b64(_images(1)[0])], "coverage": 0.99}
    problem = _problem(_post(stack, json=body), 422, "coverage_unattainable")
    assert "ask for at most 0.975" in problem["detail"]  # 40 held-out residuals: 40/41
    assert problem["errors"][0]["field"] == "coverage"


def test_coverage_must_be_a_number_strictly_between_0_and_1(
    stack: Stack, price_model: Path
) -> None:
    image = _b64(_images(1)[0])
    for bad in (0, 1, 0.0, 1.0, 1.5, -0.1, "0.9", True, [0.9], 10**400):
        problem = _problem(_post(stack, json={"inputs": [image], "coverage": bad}), 422)
        assert problem["code"] == "invalid_input", (bad, problem)
        assert problem["errors"][0]["field"] == "coverage"
    for raw in (b"NaN", b"Infinity", b"1e400"):
        content = b'{"inputs": [' + json.dumps(image).encode() + b'], "coverage": ' + raw + b"}"
        headers = {"content-type": "application/json"}
        _problem(_post(stack, content=content, headers=headers), 422, "invalid_input")
    files = {"file": ("a.png", _images(1)[0], "image/png")}
    for bad in ("abc", "1e-1", "-0.5", "0", "1", "", " 0.5", "0.5 ", "inf", "nan"):
        resp = _post(stack, files=files, data={"coverage": bad})
        assert _problem(resp, 422, "invalid_input")["errors"][0]["field"] == "coverage", bad


def test_texts_to_an_image_regressor_are_refused_by_its_task(
    stack: Stack, price_model: Path
) -> None:
    problem = _problem(_post(stack, json={"inputs": ["a text"]}), 422, "wrong_input_kind")
    assert f"Model {NAME!r} predicts from images but the request sent texts" in problem["detail"]


def test_the_contract_documents_every_prediction_shape_and_coverage(stack: Stack) -> None:
    schema = stack.client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/models/{name}/predict"]["post"]
    body = operation["requestBody"]["content"]
    coverage = body["application/json"]["schema"]["properties"]["coverage"]
    assert (coverage["exclusiveMinimum"], coverage["exclusiveMaximum"]) == (0, 1)
    assert "coverage" in body["multipart/form-data"]["schema"]["properties"]
    predictions = schema["components"]["schemas"]["PredictResponse"]["properties"]["predictions"]
    shapes = {ref["$ref"].rsplit("/", 1)[1] for ref in predictions["items"]["anyOf"]}
    assert shapes == {"ClassificationPrediction", "MultiLabelPrediction", "RegressionPrediction"}
    regression = schema["components"]["schemas"]["RegressionPrediction"]
    assert {"value", "interval", "coverage"} <= set(regression["required"])
    assert "calibrated probabilities" not in operation["summary"]
