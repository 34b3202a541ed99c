"""Issue 9, prediction: one bad request never hurts another. Bad inputs of every kind, sent
concurrently with good ones to a real uvicorn server, fail alone with a 422 naming them, and
every good request gets exactly the answer it gets alone; bodies are capped while read."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.inference.body import body_limit
from app.main import create_app
from tests.app.inference.conftest import Trained
from tests.app.inference.test_predict_api import _b64, _images, _problem, _same, _texts
from tests.conftest import Stack
from tests.support.api_process import ApiProcess


@dataclass(frozen=True)
class Call:
    """One request: JSON bytes (so a lone surrogate can be sent as the escape it is) or
    multipart files; ``bad`` names the input that must be refused, None for a good one."""

    path: str
    json_body: bytes | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    bad: str | None = None


def _json(inputs: list[Any]) -> bytes:
    return json.dumps({"inputs": inputs, "top_k": 1000}).encode()  # ensure_ascii: \ud800


def _files(images: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("file", (f"{i}.png", data, "image/png")) for i, data in enumerate(images)]


async def _send(client: httpx.AsyncClient, call: Call, headers: dict[str, str]) -> httpx.Response:
    if call.files is not None:
        return await client.post(
            call.path, files=call.files, data={"top_k": "1000"}, headers=headers
        )
    json_headers = {**headers, "content-type": "application/json"}
    return await client.post(call.path, content=call.json_body, headers=json_headers)


def _run(
    server: ApiProcess, stack: Stack, calls: list[Call]
) -> tuple[list[httpx.Response], list[int]]:
    """All calls at once, while /healthz is polled; the responses and the health statuses."""

    async def run() -> tuple[list[httpx.Response], list[int]]:
        limits = httpx.Limits(max_connections=len(calls) + 4)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            done = asyncio.Event()
            health: list[int] = []

            async def poll() -> None:
                while not done.is_set():
                    health.append((await client.get("/healthz", timeout=5)).status_code)
                    await asyncio.sleep(0.02)

            poller = asyncio.create_task(poll())
            try:
                responses = await asyncio.gather(
                    *(_send(client, c, stack.headers()) for c in calls)
                )
            finally:
                done.set()
                await poller
            return list(responses), health

    return asyncio.run(run())


def _truncated(png: bytes) -> bytes:
    """A PNG cut short: its header (signature, IHDR) is whole, its pixel data is not."""
    return png[: len(png) * 3 // 5]


def test_bad_inputs_fail_alone_among_concurrent_good_ones(
    stack: Stack, api_server: ApiProcess, text_model: Trained, image_model: Trained
) -> None:
    text = f"/v1/models/{text_model.name}/predict"
    image = f"/v1/models/{image_model.name}/predict"
    texts, images = _texts(12), _images(16)
    good = [
        *(Call(text, _json([t])) for t in texts),
        *(Call(image, _json([_b64(b)])) for b in images[:8]),
        *(Call(image, files=_files([b])) for b in images[8:]),
        Call(text, _json(texts[:4])),
        Call(image, _json([_b64(b) for b in images[:3]])),
        Call(image, files=_files(images[8:11])),
    ]
    junk = b"\x89PNG but not really an image"
    bad = [
        Call(text, _json(["\ud800"]), bad="inputs[0]"),
        Call(text, _json([texts[0], "fine \udfff here"]), bad="inputs[1]"),
        Call(image, _json([{"image_base64": base64.b64encode(junk).decode()}]), bad="inputs[0]"),
        Call(image, _json([_b64(images[0]), _b64(junk)]), bad="inputs[1]"),
        Call(image, _json([_b64(_truncated(images[1]))]), bad="inputs[0]"),
        Call(image, _json([_b64(images[2]), _b64(_truncated(images[3]))]), bad="inputs[1]"),
        Call(image, files=_files([junk]), bad="file[0]"),
        Call(image, files=_files([images[4], _truncated(images[5])]), bad="file[1]"),
        Call(image, files=_files([_truncated(images[6])]), bad="file[0]"),
    ]
    alone = [_run(api_server, stack, [call])[0][0] for call in good]
    assert all(r.status_code == 200 for r in alone), [r.text for r in alone if r.status_code != 200]
    # Three rounds of the good requests, a bad one after every third: 87 good, 29 bad.
    calls: list[Call] = []
    for i, call in enumerate(good * 3):
        calls += [call, bad[i // 3 % len(bad)]] if i % 3 == 2 else [call]
    log_start = len(api_server.log())
    responses, health = _run(api_server, stack, calls)

    expected = {
        id(call): resp.json()["predictions"] for call, resp in zip(good, alone, strict=True)
    }
    for call, resp in zip(calls, responses, strict=True):
        if call.bad is None:
            assert resp.status_code == 200, resp.text
            got = resp.json()["predictions"]
            assert len(got) == len(expected[id(call)])
            for g, e in zip(got, expected[id(call)], strict=True):
                _same(g, e)
        else:
            body = _problem(resp, 422)
            assert body["errors"][0]["field"] == call.bad, body
            assert body["detail"].startswith(call.bad), body
    # The bad inputs that reach a batch (truncated PNGs) really shared it with good ones.
    sizes = [int(r.headers["x-batch-size"]) for r in responses if r.status_code == 200]
    assert max(sizes) > 1, sizes
    assert health and all(status == 200 for status in health), health
    log = api_server.log()[log_start:]
    assert "Traceback" not in log, log[-3000:]  # no 500, no batch that fell back


def test_predict_bodies_are_capped_while_read(stack: Stack, text_model: Trained) -> None:
    """Past HONE_MAX_PREDICT_BODY_BYTES the API stops reading: 413 whether the length is
    declared, streamed in chunks, or spread over multipart files."""
    app = create_app(stack.backend.settings(max_predict_body_bytes=4096))
    url = f"/v1/models/{text_model.name}/predict"
    h = {**stack.headers(), "content-type": "application/json"}
    over = _json(["x" * 5000])

    form = httpx.Request("POST", url, files=_files([b"\0" * 2000] * 3))
    form_type = {**stack.headers(), "content-type": form.headers["content-type"]}

    def chunks(data: bytes) -> Any:
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    with TestClient(app) as client:
        for resp in (
            client.post(url, content=over, headers=h),
            client.post(url, content=chunks(over), headers=h),  # no Content-Length
            client.post(url, files=_files([b"\0" * 2000] * 3), headers=stack.headers()),
            client.post(url, content=chunks(form.read()), headers=form_type),
        ):
            body = _problem(resp, 413, "body_too_large")
            assert "4096" in body["detail"] and "HONE_MAX_PREDICT_BODY_BYTES" in body["detail"]
        # Under the cap the body is read and judged as usual.
        under = json.dumps({"inputs": ["x" * 3000], "top_k": "3"}).encode()
        _problem(client.post(url, content=under, headers=h), 422, "invalid_input")


def test_the_default_cap_fits_one_largest_image_as_mime_base64(
    stack: Stack, api_server: ApiProcess, text_model: Trained
) -> None:
    settings = stack.backend.settings()
    limit = body_limit(settings)
    encoded = base64.encodebytes(b"\0" * settings.max_image_bytes)  # MIME: a line break per 76
    assert len(encoded) + 1000 < limit < 2 * settings.max_image_bytes
    url = f"{api_server.url}/v1/models/{text_model.name}/predict"
    h = {**stack.headers(), "content-type": "application/json"}
    resp = httpx.post(url, content=b"[" + b" " * limit + b"]", headers=h, timeout=60)
    body = _problem(resp, 413, "body_too_large")
    assert str(limit) in body["detail"]
