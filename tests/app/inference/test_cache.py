import asyncio
import threading
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.inference import BatcherClosed, ModelCache, ModelLoadError
from ml.inference import load_predictor
from ml.tasks import PredictOptions
from tests.ml.inference.builders import image_artifact, image_bytes

pytestmark = pytest.mark.anyio


class Echo:
    """A stand-in model that answers each input with the name of the model that read it."""

    def __init__(self, name: Hashable, memory_bytes: int = 100) -> None:
        self.name = name
        self.memory_bytes = memory_bytes

    def preprocess(self, inputs: Sequence[Any]) -> Any:
        return list(inputs)

    def forward(self, batch: Any) -> np.ndarray:
        return np.zeros((len(batch), 1))

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict]:
        return [{"label": str(self.name), "score": 1.0, "scores": []} for _ in values]

    def check(self, options: PredictOptions) -> None:
        pass


class Loader:
    def __init__(self, memory_bytes: int = 100) -> None:
        self.calls: Counter[Hashable] = Counter()
        self.threads: set[int] = set()
        self.memory_bytes = memory_bytes
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.failures: dict[Hashable, int] = {}

    def __call__(self, key: Hashable) -> Echo:
        self.calls[key] += 1
        self.threads.add(threading.get_ident())
        self.entered.set()
        assert self.gate.wait(30)
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            raise FileNotFoundError(f"no artifact for {key}")
        return Echo(key, self.memory_bytes)


async def test_twenty_concurrent_first_requests_share_one_load_off_the_loop() -> None:
    loader = Loader()
    loader.gate.clear()
    cache = ModelCache(loader, memory_budget_bytes=1000)
    waiters = [asyncio.create_task(cache.get("m")) for _ in range(20)]
    # The loader is blocked in its thread; the event loop is free to run this wait meanwhile.
    assert await asyncio.to_thread(loader.entered.wait, 30)
    assert not any(w.done() for w in waiters)
    loader.gate.set()
    models = await asyncio.gather(*waiters)

    assert loader.calls == {"m": 1}
    assert threading.get_ident() not in loader.threads
    assert all(model is models[0] for model in models)
    predictions, _ = await models[0].batcher.submit(["x"], PredictOptions(top_k=1))
    assert predictions[0]["label"] == "m"
    assert await cache.get("m") is models[0]
    await cache.close()


async def test_least_recently_used_models_leave_when_over_budget() -> None:
    loader = Loader(memory_bytes=100)
    cache = ModelCache(loader, memory_budget_bytes=250)
    a = await cache.get("a")
    await cache.get("b")
    await cache.get("a")  # a is now more recent than b
    await cache.get("c")

    assert cache.loaded_keys() == ["a", "c"]
    assert cache.memory_bytes == 200
    assert (await a.batcher.submit(["x"], PredictOptions(top_k=1)))[0][0]["label"] == "a"
    await cache.get("b")  # loads again, and pushes out a, the least recent now
    assert loader.calls == {"a": 1, "b": 2, "c": 1}
    assert cache.loaded_keys() == ["c", "b"]
    with pytest.raises(BatcherClosed):
        await a.batcher.submit(["x"], PredictOptions(top_k=1))
    await cache.close()


async def test_a_model_in_use_is_not_evicted() -> None:
    cache = ModelCache(Loader(memory_bytes=100), memory_budget_bytes=150)
    async with cache.use("a") as a:
        await cache.get("b")
        assert cache.loaded_keys() == ["a", "b"]  # over budget rather than pull a from under us
        assert (await a.batcher.submit(["x"], PredictOptions(top_k=1)))[0][0]["label"] == "a"
    await cache.get("c")
    assert cache.loaded_keys() == ["c"]
    await cache.close()


async def test_a_failed_load_reaches_every_waiter_and_is_retried() -> None:
    loader = Loader()
    loader.failures["m"] = 1
    loader.gate.clear()
    cache = ModelCache(loader, memory_budget_bytes=1000)
    waiters = [asyncio.create_task(cache.get("m")) for _ in range(5)]
    assert await asyncio.to_thread(loader.entered.wait, 30)
    loader.gate.set()
    errors = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(e, ModelLoadError) for e in errors)
    assert all("no artifact for m" in e.reason for e in errors if isinstance(e, ModelLoadError))
    assert cache.loaded_keys() == []
    model = await cache.get("m")
    assert loader.calls == {"m": 2}
    assert cache.loaded_keys() == ["m"] and model.predictor.memory_bytes == 100
    await cache.close()


async def test_evict_stops_the_model_and_the_next_request_reloads_it() -> None:
    loader = Loader()
    cache = ModelCache(loader, memory_budget_bytes=1000)
    first = await cache.get("m")
    cache.evict("m")
    assert cache.loaded_keys() == []
    with pytest.raises(BatcherClosed):
        await first.batcher.submit(["x"], PredictOptions(top_k=1))
    second = await cache.get("m")
    assert second is not first
    assert loader.calls == {"m": 2}
    cache.evict("never loaded")  # nothing to do, no error
    await cache.close()


async def test_evicting_during_a_load_discards_what_it_loads() -> None:
    loader = Loader()
    loader.gate.clear()
    cache = ModelCache(loader, memory_budget_bytes=1000)
    waiter = asyncio.create_task(cache.get("m"))
    assert await asyncio.to_thread(loader.entered.wait, 30)
    cache.evict("m")  # e.g. the version was deleted while it loaded
    loader.gate.set()
    with pytest.raises(ModelLoadError):
        await waiter
    assert cache.loaded_keys() == []
    await cache.close()


async def test_a_waiter_that_gives_up_does_not_cancel_the_load() -> None:
    loader = Loader()
    loader.gate.clear()
    cache = ModelCache(loader, memory_budget_bytes=1000)
    impatient = asyncio.create_task(cache.get("m"))
    patient = asyncio.create_task(cache.get("m"))
    assert await asyncio.to_thread(loader.entered.wait, 30)
    impatient.cancel()
    loader.gate.set()
    assert (await patient).key == "m"
    assert impatient.cancelled()
    await cache.close()


async def test_close_stops_every_batcher_and_refuses_new_gets() -> None:
    cache = ModelCache(Loader(), memory_budget_bytes=1000)
    model = await cache.get("m")
    await cache.close()
    with pytest.raises(BatcherClosed):
        await model.batcher.submit(["x"], PredictOptions(top_k=1))
    with pytest.raises(ModelLoadError):
        await cache.get("m")


async def test_a_real_artifact_served_through_the_cache(tmp_path: Path) -> None:
    artifact_dir = image_artifact(tmp_path / "v1", ["a", "b", "c"])
    seen: list[int] = []

    class Observer:
        def batch(self, size: int, queue_depth: int, inference_ms: float) -> None:
            seen.append(size)

    cache = ModelCache(
        lambda key: load_predictor(artifact_dir),
        memory_budget_bytes=1024**3,
        observer=lambda key: Observer(),
    )
    async with cache.use(("project", "model", 1)) as model:
        images = [image_bytes(i) for i in range(3)]
        predictions, timing = await model.batcher.submit(images, PredictOptions(top_k=2))
    expected = load_predictor(artifact_dir).predict(images, PredictOptions(top_k=2))
    assert [p["label"] for p in predictions] == [p["label"] for p in expected]
    np.testing.assert_allclose(
        [p["score"] for p in predictions], [p["score"] for p in expected], atol=1e-6
    )
    assert timing.batch_size == 3 and seen == [3]
    await cache.close()
