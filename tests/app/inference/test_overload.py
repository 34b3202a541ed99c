"""Overload: a bounded queue answers 429 with Retry-After, never 5xx, and /healthz stays up."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.app.inference.conftest import Trained
from tests.conftest import Stack
from tests.factories.uploads import tweets
from tests.support.api_process import ApiProcess


def test_burst_gets_429_with_retry_after_and_health_keeps_answering(
    stack: Stack, text_model: Trained
) -> None:
    server = ApiProcess(
        stack.backend,
        stack.backend.data_dir / "api-overload.log",
        HONE_MAX_QUEUE="2",
        HONE_MAX_BATCH_SIZE="1",
        HONE_MAX_WAIT_MS="0",
    ).start()
    # Each request fills the whole queue, so any overlap between two requests is refused.
    texts = [t for t, _ in tweets(640)]
    url = f"/v1/models/{text_model.name}/predict"

    async def burst() -> tuple[list[httpx.Response], list[float]]:
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=100)
        ) as client:
            warm = await client.post(url, json={"inputs": ["warm up"]}, headers=stack.headers())
            assert warm.status_code == 200, warm.text
            health_latency: list[float] = []

            async def health() -> None:
                for _ in range(10):
                    start = time.perf_counter()
                    resp = await client.get("/healthz")
                    assert resp.status_code == 200
                    health_latency.append(time.perf_counter() - start)
                    await asyncio.sleep(0.01)

            predictions = [
                client.post(url, json={"inputs": texts[i : i + 16]}, headers=stack.headers())
                for i in range(0, 640, 16)
            ]
            results = await asyncio.gather(health(), *predictions)
            return list(results[1:]), health_latency

    try:
        responses, health_latency = asyncio.run(burst())
    finally:
        server.stop()
    statuses = [r.status_code for r in responses]
    assert all(s in (200, 429) for s in statuses), statuses
    assert statuses.count(429) > 0 and statuses.count(200) > 0, statuses
    for r in responses:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["content-type"].startswith("application/problem+json")
    assert len(health_latency) == 10 and max(health_latency) < 2.0
