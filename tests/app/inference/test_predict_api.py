"""Prediction through a real uvicorn server: correctness under concurrency, calibrated
probabilities equal to the trained model's, version resolution and every bad input."""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import TypeAdapter

from app.inference.schemas import PredictResponse
from ml.artifacts import load_artifact
from tests.app.inference.conftest import Trained
from tests.conftest import Stack
from tests.factories.uploads import image_bytes, tweets
from tests.support.api_process import ApiProcess


def _texts(n: int) -> list[str]:
    return [text for text, _ in tweets(n)]


def _images(n: int) -> list[bytes]:
    return [image_bytes(seed=1000 + i, size=(24 + i % 9, 24 + i % 7)) for i in range(n)]


def _b64(data: bytes) -> dict[str, str]:
    return {"image_base64": base64.b64encode(data).decode()}


def _headers(stack: Stack, key: str | None = None) -> dict[str, str]:
    return stack.headers(key)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Same probabilities for every label; same top label unless the top two tie."""
    pa = {s["label"]: s["score"] for s in a["scores"]}
    pb = {s["label"]: s["score"] for s in b["scores"]}
    assert pa.keys() == pb.keys()
    np.testing.assert_allclose([pa[k] for k in pa], [pb[k] for k in pa], atol=1e-4)
    top = sorted(pb.values(), reverse=True)
    if top[0] - top[1] > 1e-3:
        assert a["label"] == b["label"]


def _concurrent(
    server: ApiProcess, stack: Stack, path: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(client.post(path, json=b, headers=_headers(stack)) for b in bodies)
            )

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["text", "image"])
def test_64_concurrent_requests_get_their_own_answers(
    kind: str, stack: Stack, api_server: ApiProcess, image_model: Trained, text_model: Trained
) -> None:
    model = text_model if kind == "text" else image_model
    inputs: list[Any] = _texts(64) if kind == "text" else [_b64(b) for b in _images(64)]
    path = f"/v1/models/{model.name}/predict"
    sequential = []
    for item in inputs:
        resp = httpx.post(
            api_server.url + path,
            json={"inputs": [item], "top_k": 1000},
            headers=_headers(stack),
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        sequential.append(resp.json()["predictions"][0])
    responses = _concurrent(
        api_server, stack, path, [{"inputs": [item], "top_k": 1000} for item in inputs]
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    for resp, expected in zip(responses, sequential, strict=True):
        _same(resp.json()["predictions"][0], expected)
    # One request with many inputs answers in input order.
    batch = httpx.post(
        api_server.url + path,
        json={"inputs": inputs[:16], "top_k": 1000},
        headers=_headers(stack),
        timeout=60,
    ).json()["predictions"]
    for got, expected in zip(batch, sequential[:16], strict=True):
        _same(got, expected)
    assert len({p["label"] for p in sequential}) >= 1
    metrics = httpx.get(api_server.url + "/metrics").text
    assert "hone_predict_batch_size_bucket" in metrics


def test_served_probabilities_are_the_trained_models_calibrated_ones(
    stack: Stack, api_server: ApiProcess, text_model: Trained, image_model: Trained
) -> None:
    for model, inputs in ((text_model, _texts(6)), (image_model, _images(6))):
        artifact = load_artifact(model.artifact_dir(stack))
        labels = artifact.config["labels"]
        temperature = float(artifact.config["temperature"])
        if model is text_model:
            enc = artifact.tokenizer(
                inputs,
                padding=True,
                truncation=True,  # type: ignore[misc]
                max_length=artifact.config["preprocessing"]["max_length"],
                return_tensors="pt",
            )
            with torch.inference_mode():
                logits = artifact.model(**enc).logits
            body: dict[str, Any] = {"inputs": inputs, "top_k": len(labels)}
        else:
            from ml.inference.images import ImagePreprocessor

            batch = ImagePreprocessor(artifact.config["preprocessing"])(inputs)
            with torch.inference_mode():
                logits = artifact.model(torch.from_numpy(batch["pixel_values"]))
            body = {"inputs": [_b64(b) for b in inputs], "top_k": len(labels)}
        expected = torch.softmax(logits / temperature, dim=-1).numpy()
        resp = httpx.post(
            f"{api_server.url}/v1/models/{model.name}/predict",
            json=body,
            headers=_headers(stack),
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        for row, probs in zip(resp.json()["predictions"], expected, strict=True):
            served = {s["label"]: s["score"] for s in row["scores"]}
            np.testing.assert_allclose([served[label] for label in labels], probs, atol=2e-3)
            assert row["label"] == labels[int(np.argmax(probs))]
            assert row["score"] == pytest.approx(float(probs.max()), abs=2e-3)


def test_multipart_images_and_timing_headers(
    stack: Stack, api_server: ApiProcess, image_model: Trained
) -> None:
    files = [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(_images(3))]
    resp = httpx.post(
        f"{api_server.url}/v1/models/{image_model.name}/predict",
        files=files,
        data={"top_k": "2", "coverage": "0.5"},  # a classifier has no use for coverage
        headers=_headers(stack),
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    TypeAdapter(PredictResponse).validate_python(body)  # the shape /openapi.json documents
    assert body["model"] == {"name": image_model.name, "version": image_model.version}
    assert len(body["predictions"]) == 3
    assert all(len(p["scores"]) == 2 for p in body["predictions"])
    assert float(resp.headers["x-inference-time-ms"]) > 0
    assert int(resp.headers["x-batch-size"]) >= 1
    parts = dict(p.strip().split(";dur=") for p in resp.headers["server-timing"].split(","))
    timing = {name: float(value) for name, value in parts.items()}
    assert set(timing) == {"queue", "inference", "forward", "handler"}
    # The forward pass is part of the batch's run, which is part of the handler's time.
    assert 0 < timing["forward"] <= timing["inference"] <= timing["handler"]
    assert timing["inference"] == float(resp.headers["x-inference-time-ms"])


def _problem(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    if code:
        assert body["code"] == code, body
    return body


def test_bad_inputs_are_clear_4xx(
    stack: Stack, api_server: ApiProcess, text_model: Trained, image_model: Trained
) -> None:
    text = f"{api_server.url}/v1/models/{text_model.name}/predict"
    image = f"{api_server.url}/v1/models/{image_model.name}/predict"
    h = _headers(stack)
    png = _images(1)[0]
    encoded = _b64(png)["image_base64"]
    cases = [
        (image, {"inputs": ["a text to an image model"]}, 422, "wrong_input_kind"),
        (text, {"inputs": [_b64(_images(1)[0])]}, 422, "wrong_input_kind"),
        (text, {"inputs": []}, 422, "invalid_input"),
        (text, {"inputs": ["x"] * 65}, 422, "too_many_inputs"),
        (text, {"inputs": ["x" * 100_001]}, 422, "text_too_long"),
        (text, {"inputs": ["   "]}, 422, "invalid_text"),
        (text, {"inputs": ["ok"], "top_k": 0}, 422, "invalid_input"),
        (text, {"inputs": "not a list"}, 422, "invalid_input"),
        (image, {"inputs": [{"image_base64": "%%%"}]}, 422, "invalid_input"),
        (image, {"inputs": [_b64(b"not an image at all")]}, 422, "invalid_input"),
        # top_k is a JSON integer: no string, float or boolean is coerced into one.
        (text, {"inputs": ["ok"], "top_k": "3"}, 422, "invalid_input"),
        (text, {"inputs": ["ok"], "top_k": 3.0}, 422, "invalid_input"),
        (text, {"inputs": ["ok"], "top_k": True}, 422, "invalid_input"),
        (text, {"inputs": ["ok"], "top_k": 1001}, 422, "invalid_input"),
        # Base64 may have MIME line breaks (test_mime_base64...), but no other junk.
        *(
            (image, {"inputs": [{"image_base64": encoded[:8] + junk + encoded[8:]}]}, 422, None)
            for junk in (" ", "\t", "*", "\u00e9")
        ),
        # The header is whole, the pixel data is not: refused from the batch, as its own 422.
        (image, {"inputs": [_b64(png[: len(png) // 2])]}, 422, "invalid_input"),
    ]
    for url, body, status, code in cases:
        problem = _problem(httpx.post(url, json=body, headers=h, timeout=30), status, code)
        assert problem["errors"], problem
    # A lone surrogate is valid JSON but no text: 422 for this request, before any batch.
    problem = _problem(
        httpx.post(
            text,
            content=b'{"inputs": ["fine", "\\ud800"]}',
            headers={**h, "content-type": "application/json"},
        ),
        422,
        "invalid_text",
    )
    assert problem["errors"][0]["field"] == "inputs[1]"
    data_url = {"image_base64": "data:image/png;base64," + _b64(png)["image_base64"]}
    detail = _problem(httpx.post(image, json={"inputs": [data_url]}, headers=h), 422)["detail"]
    assert "data: URL" in detail
    # In multipart a form field is text: top_k is decimal digits and nothing else.
    files = {"file": ("a.png", png, "image/png")}
    for bad in ("3.0", " 3", "-1", "0", "\u00b3", "3e2", ""):
        resp = httpx.post(image, files=files, data={"top_k": bad}, headers=h, timeout=30)
        _problem(resp, 422, "invalid_input")
    _problem(
        httpx.post(image, files={"file": ("a.png", b"GIF89a junk", "image/gif")}, headers=h),
        422,
        "invalid_input",
    )
    big = Image.new("L", (10_000, 10_000))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    _problem(
        httpx.post(image, json={"inputs": [_b64(buf.getvalue())]}, headers=h, timeout=30),
        422,
        "invalid_input",
    )
    _problem(httpx.post(text, content=b"plain", headers={**h, "content-type": "text/plain"}), 415)


def test_every_text_a_dataset_accepts_is_served_as_trained(
    stack: Stack, api_server: ApiProcess, text_model: Trained
) -> None:
    """A held-out document of 25,484 characters was once refused with 422 although datasets
    keep texts up to HONE_MAX_TEXT_CHARS; now it is served, truncated to max_length tokens
    like the training texts, and only a text over the one shared cap is refused."""
    url = f"{api_server.url}/v1/models/{text_model.name}/predict"
    h = _headers(stack)
    words = " ".join(_texts(120))
    document = (words * (25_484 // len(words) + 1))[:25_484]
    resp = httpx.post(url, json={"inputs": [document], "top_k": 1000}, headers=h, timeout=60)
    assert resp.status_code == 200, resp.text
    # Past max_length tokens nothing is read: a different ending gives the same answer.
    other_ending = document[:-2_000] + " completely different closing words " * 50
    again = httpx.post(url, json={"inputs": [other_ending], "top_k": 1000}, headers=h, timeout=60)
    _same(resp.json()["predictions"][0], again.json()["predictions"][0])
    # Surrounding whitespace is stripped as in datasets.
    padded = httpx.post(url, json={"inputs": [f"\n  {document} \t"], "top_k": 1000}, headers=h)
    _same(resp.json()["predictions"][0], padded.json()["predictions"][0])
    cap = stack.backend.settings().max_text_chars
    body = _problem(
        httpx.post(url, json={"inputs": ["y" * (cap + 1)]}, headers=h, timeout=60),
        422,
        "text_too_long",
    )
    assert "HONE_MAX_TEXT_CHARS" in body["detail"] and str(cap) in body["detail"]
    assert httpx.post(url, json={"inputs": ["y" * cap]}, headers=h, timeout=60).status_code == 200


def test_an_image_as_large_as_datasets_keep_is_served(
    stack: Stack, api_server: ApiProcess, image_model: Trained
) -> None:
    """Datasets keep images up to HONE_MAX_IMAGE_BYTES; predict once stopped at 20 MiB."""
    rng = np.random.default_rng(5)
    noise = Image.fromarray(rng.integers(0, 255, (2_700, 2_800, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    assert 21 * 1024**2 < len(data) < stack.backend.settings().max_image_bytes
    resp = httpx.post(
        f"{api_server.url}/v1/models/{image_model.name}/predict",
        files={"file": ("big.png", data, "image/png")},
        headers=_headers(stack),
        timeout=120,
    )
    assert resp.status_code == 200, resp.text


def test_version_resolution_and_isolation(
    stack: Stack, api_server: ApiProcess, text_model: Trained
) -> None:
    h = _headers(stack)
    url = f"{api_server.url}/v1/models/{text_model.name}/predict"
    body = {"inputs": ["good morning"]}
    assert httpx.post(url, json=body, headers=h).json()["model"]["version"] == text_model.version
    got = httpx.post(url + f"?version={text_model.version}", json=body, headers=h)
    assert got.json()["model"]["version"] == text_model.version
    _problem(httpx.post(url + "?version=999", json=body, headers=h), 404)
    # Both a version and an alias: refused, not the version served and the alias ignored.
    for alias in ("nope", "production"):
        both = f"?version={text_model.version}&alias={alias}"
        body_both = _problem(httpx.post(url + both, json=body, headers=h), 422, "version_and_alias")
        assert "not both" in body_both["detail"]
    # A version out of the registry's integer range is a 422, not a database overflow.
    for version in ("0", str(2**31), "1" * 20, "-1", "1.5"):
        _problem(httpx.post(url + f"?version={version}", json=body, headers=h), 422)
    _problem(httpx.post(url + f"?version={2**31 - 1}", json=body, headers=h), 404)
    _problem(httpx.post(url + "?alias=nope", json=body, headers=h), 404, "alias_not_found")
    _problem(
        httpx.post(f"{api_server.url}/v1/models/nope/predict", json=body, headers=h),
        404,
        "model_not_found",
    )
    _problem(
        httpx.post(url, json=body, headers=_headers(stack, stack.key_b)), 404, "model_not_found"
    )
    _problem(httpx.post(url, json=body), 401)


def test_mime_base64_with_line_breaks_is_the_same_image(
    stack: Stack, api_server: ApiProcess, image_model: Trained
) -> None:
    """Most encoders (`base64`, Python's encodebytes, MIME mail) break lines every 76
    characters, with LF or CRLF: the same bytes, the same answer."""
    url = f"{api_server.url}/v1/models/{image_model.name}/predict"
    data = image_bytes(seed=7, size=(64, 48))
    plain = base64.b64encode(data).decode()
    assert len(plain) > 76
    lf = base64.encodebytes(data).decode()
    crlf = lf.replace("\n", "\r\n")
    answers = []
    for encoded in (plain, lf, crlf):
        body = {"inputs": [{"image_base64": encoded}], "top_k": 1000}
        resp = httpx.post(url, json=body, headers=_headers(stack), timeout=30)
        assert resp.status_code == 200, resp.text
        answers.append(resp.json()["predictions"][0])
    _same(answers[1], answers[0])
    _same(answers[2], answers[0])
