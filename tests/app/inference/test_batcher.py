import asyncio
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from app.inference import Batcher, BatcherClosed, QueueFull
from ml.inference import InputError, Predictor, load_predictor
from ml.tasks import PredictOptions
from tests.ml.inference.builders import (
    image_artifact,
    image_bytes,
    regression_artifact,
    text_artifact,
    texts,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def image_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    dest = tmp_path_factory.mktemp("img") / "v1"
    return load_predictor(image_artifact(dest, ["cat", "dog", "fox", "owl"]))


@pytest.fixture(scope="module")
def text_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    dest = tmp_path_factory.mktemp("txt") / "v1"
    return load_predictor(text_artifact(dest, ["neg", "neutral", "pos"]))


@pytest.fixture(scope="module")
def regression_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    dest = tmp_path_factory.mktemp("reg") / "v1"
    return load_predictor(regression_artifact(dest, "image", ["price"], mean=[50.0], std=[9.0]))


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1)
    yield pool
    pool.shutdown(wait=True)


class Recorder:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def batch(self, size: int, queue_depth: int, inference_ms: float) -> None:
        assert queue_depth >= 0 and inference_ms > 0
        self.sizes.append(size)


class Wrapping:
    """A predictor around a real one: what a test does not change goes to ``inner``."""

    inner: Predictor

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        return self.inner.postprocess(raw)

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict]:
        return self.inner.format(values, options)

    def check(self, options: PredictOptions) -> None:
        self.inner.check(options)


class Gated(Wrapping):
    """A predictor whose forward passes wait for ``release``; ``entered`` tells one began."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner
        self.memory_bytes = inner.memory_bytes
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_next = False

    def preprocess(self, inputs: Sequence[Any]) -> Any:
        return self.inner.preprocess(inputs)

    def forward(self, batch: Any) -> np.ndarray:
        self.entered.set()
        self.release.wait(timeout=30)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("forward failed")
        return self.inner.forward(batch)


def assert_same(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g["label"] == e["label"]
        assert [s["label"] for s in g["scores"]] == [s["label"] for s in e["scores"]]
        np.testing.assert_allclose(
            [s["score"] for s in g["scores"]], [s["score"] for s in e["scores"]], atol=1e-5
        )


async def _in_flight(gated: Gated) -> None:
    """Wait (in a thread, so the loop keeps running) until a forward pass has begun."""
    assert await asyncio.to_thread(gated.entered.wait, 30)


@pytest.mark.parametrize("modality", ["text", "image"])
async def test_64_concurrent_requests_each_get_their_own_answers_in_order(
    modality: str, request: pytest.FixtureRequest, executor: ThreadPoolExecutor
) -> None:
    predictor: Predictor = request.getfixturevalue(f"{modality}_predictor")
    inputs: list[Any] = texts(160) if modality == "text" else [image_bytes(i) for i in range(160)]
    # request i carries 1-4 distinct inputs: 160 inputs in 64 requests
    sizes = [1 + i % 4 for i in range(64)]
    starts = np.cumsum([0, *sizes])
    requests = [inputs[starts[i] : starts[i + 1]] for i in range(64)]
    alone = [predictor.predict([x], PredictOptions(top_k=3))[0] for x in inputs]
    top_scores = {round(p["scores"][0]["score"], 4) for p in alone}
    assert len(top_scores) > 100, "inputs must be told apart for the test to mean anything"

    recorder = Recorder()
    batcher = Batcher(
        predictor,
        max_batch_size=8,
        max_wait_ms=5,
        max_queue=512,
        executor=executor,
        observer=recorder,
    )
    answers = await asyncio.gather(
        *(batcher.submit(items, PredictOptions(top_k=3)) for items in requests)
    )
    await batcher.close()

    for i, (predictions, timing) in enumerate(answers):
        assert_same(predictions, alone[starts[i] : starts[i + 1]])
        assert timing.inference_ms > 0 and timing.queue_ms >= 0
        assert 1 <= timing.batch_size <= 8
    assert sum(recorder.sizes) == 160
    assert max(recorder.sizes) == 8  # concurrent requests really were batched together


async def test_a_full_queue_refuses_at_once_while_queued_work_completes(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    gated = Gated(text_predictor)
    batcher = Batcher(gated, max_batch_size=2, max_wait_ms=0, max_queue=4, executor=executor)
    first = asyncio.create_task(batcher.submit(["running"], PredictOptions(top_k=1)))
    await _in_flight(gated)
    queued = [
        asyncio.create_task(batcher.submit([f"queued {i}"] * 2, PredictOptions(top_k=1)))
        for i in range(2)
    ]
    await asyncio.sleep(0)  # let both tasks enqueue
    assert batcher.queue_depth == 4
    with pytest.raises(QueueFull) as full:
        await batcher.submit(["one too many"], PredictOptions(top_k=1))
    assert full.value.retry_after_s > 0

    gated.release.set()
    (predictions, _), *rest = await asyncio.gather(first, *queued)
    assert_same(predictions, text_predictor.predict(["running"], PredictOptions(top_k=1)))
    for i, (predictions, _) in enumerate(rest):
        assert_same(
            predictions, text_predictor.predict([f"queued {i}"] * 2, PredictOptions(top_k=1))
        )
    await batcher.close()


async def test_a_cancelled_caller_leaves_the_others_answered(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    gated = Gated(text_predictor)
    batcher = Batcher(gated, max_batch_size=4, max_wait_ms=0, max_queue=16, executor=executor)
    in_flight = [
        asyncio.create_task(batcher.submit([t], PredictOptions(top_k=2))) for t in ("a", "b")
    ]
    await _in_flight(gated)
    waiting = [
        asyncio.create_task(batcher.submit([t, t + "!"], PredictOptions(top_k=2)))
        for t in ("c", "d")
    ]
    await asyncio.sleep(0)
    assert batcher.queue_depth == 4
    in_flight[0].cancel()  # its input is inside the running batch
    waiting[0].cancel()  # its inputs are still queued: they leave the queue
    await asyncio.sleep(0)
    assert batcher.queue_depth == 2

    gated.release.set()
    with pytest.raises(asyncio.CancelledError):
        await in_flight[0]
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    assert_same((await in_flight[1])[0], text_predictor.predict(["b"], PredictOptions(top_k=2)))
    assert_same((await waiting[1])[0], text_predictor.predict(["d", "d!"], PredictOptions(top_k=2)))
    await batcher.close()


async def test_a_bad_input_fails_only_its_own_request(
    image_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    gated = Gated(image_predictor)
    batcher = Batcher(gated, max_batch_size=8, max_wait_ms=0, max_queue=16, executor=executor)
    blocker = asyncio.create_task(batcher.submit([image_bytes(0)], PredictOptions(top_k=1)))
    await _in_flight(gated)
    good1 = asyncio.create_task(batcher.submit([image_bytes(1)], PredictOptions(top_k=2)))
    bad = asyncio.create_task(
        batcher.submit([image_bytes(2), b"garbage", b"worse"], PredictOptions(top_k=2))
    )
    good2 = asyncio.create_task(
        batcher.submit([image_bytes(3), image_bytes(4)], PredictOptions(top_k=2))
    )
    await asyncio.sleep(0)
    gated.release.set()

    await blocker
    with pytest.raises(InputError) as error:
        await bad
    assert error.value.field == "inputs[1]"  # numbered within its own request
    assert_same(
        (await good1)[0], image_predictor.predict([image_bytes(1)], PredictOptions(top_k=2))
    )
    expected = image_predictor.predict([image_bytes(3), image_bytes(4)], PredictOptions(top_k=2))
    predictions, timing = await good2
    assert_same(predictions, expected)
    assert timing.batch_size == 3  # it ran beside good1's input once the bad request left
    await batcher.close()


class Poisoned(Wrapping):
    """A predictor whose batch call raises whenever ``poison`` is among its inputs, in
    preprocessing (as a tokenizer meeting a lone surrogate did) or in the forward pass,
    without saying which input it was. ``calls`` records each call's size."""

    def __init__(self, inner: Predictor, stage: str, poison: str = "poison") -> None:
        self.inner, self.stage, self.poison = inner, stage, poison
        self.memory_bytes = inner.memory_bytes
        self.calls: list[int] = []

    def preprocess(self, inputs: Sequence[Any]) -> Any:
        self.calls.append(len(inputs))
        if self.stage == "preprocess" and self.poison in inputs:
            raise RuntimeError("the tokenizer failed")
        return self.inner.preprocess(inputs), list(inputs)

    def forward(self, batch: Any) -> np.ndarray:
        encoded, inputs = batch
        if self.stage == "forward" and self.poison in inputs:
            raise RuntimeError("the forward pass failed")
        return self.inner.forward(encoded)


@pytest.mark.parametrize("stage", ["preprocess", "forward"])
async def test_a_failing_batch_runs_its_members_one_by_one_so_only_the_culprit_fails(
    stage: str, text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    poisoned = Poisoned(text_predictor, stage)
    # Five inputs fill one batch at once: the three requests surely share it.
    batcher = Batcher(
        poisoned, max_batch_size=5, max_wait_ms=600_000, max_queue=16, executor=executor
    )
    requests = [["good morning"], ["poison", "its own good text"], ["a", "b c"]]
    good1, bad, good2 = await asyncio.gather(
        *(batcher.submit(items, PredictOptions(top_k=3)) for items in requests),
        return_exceptions=True,
    )
    assert isinstance(bad, RuntimeError) and not isinstance(bad, InputError)
    # The batch, then each member alone; the culprit's other input is not run for nothing.
    assert poisoned.calls == [5, 1, 1, 1, 1]
    for answer, items in ((good1, requests[0]), (good2, requests[2])):
        assert not isinstance(answer, BaseException)
        predictions, timing = answer
        assert_same(
            predictions, [text_predictor.predict([x], PredictOptions(top_k=3))[0] for x in items]
        )
        assert timing.batch_size == 1
    # The batcher serves on as before; alone, the culprit gets the same error.
    poisoned.calls.clear()
    predictions, timing = await batcher.submit(texts(5), PredictOptions(top_k=3))
    assert poisoned.calls == [5] and timing.batch_size == 5
    assert_same(predictions, text_predictor.predict(texts(5), PredictOptions(top_k=3)))
    await batcher.close()
    alone = Batcher(poisoned, max_batch_size=5, max_wait_ms=0, max_queue=16, executor=executor)
    with pytest.raises(RuntimeError):
        await alone.submit(["poison"], PredictOptions(top_k=3))
    await alone.close()


async def test_an_input_error_in_a_lone_run_still_names_the_input_in_its_request(
    image_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    """A batch that fails for no input's fault sends everyone through the one-by-one path;
    a bad image found there is still its own request's 422, with its index in that request."""

    class FailsBatches(Gated):
        def preprocess(self, inputs: Sequence[Any]) -> Any:
            if len(inputs) > 1:
                raise RuntimeError("out of memory")
            return self.inner.preprocess(inputs)

    predictor = FailsBatches(image_predictor)
    predictor.release.set()
    batcher = Batcher(
        predictor, max_batch_size=4, max_wait_ms=600_000, max_queue=16, executor=executor
    )
    good, bad = await asyncio.gather(
        batcher.submit([image_bytes(1), image_bytes(2)], PredictOptions(top_k=2)),
        batcher.submit([image_bytes(3), image_bytes(4)[:60]], PredictOptions(top_k=2)),
        return_exceptions=True,
    )
    assert isinstance(bad, InputError) and bad.field == "inputs[1]"
    assert not isinstance(good, BaseException)
    expected = [
        image_predictor.predict([image_bytes(i)], PredictOptions(top_k=2))[0] for i in (1, 2)
    ]
    assert_same(good[0], expected)
    await batcher.close()


async def test_a_failed_forward_fails_its_batch_and_the_batcher_goes_on(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    gated = Gated(text_predictor)
    gated.fail_next = True
    gated.release.set()
    batcher = Batcher(gated, max_batch_size=8, max_wait_ms=0, max_queue=16, executor=executor)
    with pytest.raises(RuntimeError, match="forward failed"):
        await batcher.submit(["x"], PredictOptions(top_k=1))
    predictions, _ = await batcher.submit(["y"], PredictOptions(top_k=1))
    assert_same(predictions, text_predictor.predict(["y"], PredictOptions(top_k=1)))
    await batcher.close()


async def test_a_full_batch_does_not_wait_for_max_wait(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    batcher = Batcher(
        text_predictor, max_batch_size=4, max_wait_ms=600_000, max_queue=16, executor=executor
    )
    predictions, timing = await asyncio.wait_for(
        batcher.submit(texts(4), PredictOptions(top_k=1)), 30
    )
    assert timing.batch_size == 4
    assert len(predictions) == 4
    await batcher.close()


async def test_close_fails_waiting_callers_and_refuses_new_ones(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    gated = Gated(text_predictor)
    batcher = Batcher(gated, max_batch_size=1, max_wait_ms=0, max_queue=16, executor=executor)
    running = asyncio.create_task(batcher.submit(["a"], PredictOptions(top_k=1)))
    await _in_flight(gated)
    queued = asyncio.create_task(batcher.submit(["b"], PredictOptions(top_k=1)))
    await asyncio.sleep(0)
    await batcher.close()
    gated.release.set()
    for task in (running, queued):
        with pytest.raises(BatcherClosed):
            await task
    with pytest.raises(BatcherClosed):
        await batcher.submit(["c"], PredictOptions(top_k=1))


async def test_an_empty_request_needs_no_model(
    text_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    batcher = Batcher(
        text_predictor, max_batch_size=8, max_wait_ms=2, max_queue=8, executor=executor
    )
    predictions, timing = await batcher.submit([], PredictOptions(top_k=1))
    assert predictions == [] and timing.batch_size == 0
    await batcher.close()


async def test_requests_sharing_a_batch_each_get_the_options_they_asked_for(
    image_predictor: Predictor, regression_predictor: Predictor, executor: ThreadPoolExecutor
) -> None:
    # Two inputs fill a batch at once: both requests surely share it.
    image = image_bytes(5)
    classifier = Batcher(
        image_predictor, max_batch_size=2, max_wait_ms=600_000, max_queue=8, executor=executor
    )
    asked = [PredictOptions(top_k=1), PredictOptions(top_k=3)]
    answers = await asyncio.gather(*(classifier.submit([image], o) for o in asked))
    for (predictions, timing), options in zip(answers, asked, strict=True):
        assert timing.batch_size == 2
        assert len(predictions[0]["scores"]) == options.top_k
        assert_same(predictions, image_predictor.predict([image], options))
    await classifier.close()

    regressor = Batcher(
        regression_predictor, max_batch_size=2, max_wait_ms=600_000, max_queue=8, executor=executor
    )
    asked = [PredictOptions(coverage=0.5), PredictOptions(coverage=0.9)]
    answers = await asyncio.gather(*(regressor.submit([image], o) for o in asked))
    (narrow,), (wide,) = (predictions for predictions, _ in answers)
    assert all(timing.batch_size == 2 for _, timing in answers)
    assert (narrow["coverage"], wide["coverage"]) == (0.5, 0.9)
    assert narrow["value"] == pytest.approx(wide["value"], abs=1e-6)
    assert wide["interval"][0] < narrow["interval"][0] < narrow["interval"][1] < wide["interval"][1]
    for got, options in ((narrow, asked[0]), (wide, asked[1])):
        (alone,) = regression_predictor.predict([image], options)
        assert got["interval"] == pytest.approx(alone["interval"], abs=1e-6)
    await regressor.close()
