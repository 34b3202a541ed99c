"""Dynamic batching: concurrent prediction requests for one model share forward passes.

One background task per model collects queued inputs until ``max_batch_size`` are waiting or
``max_wait_ms`` has passed since the oldest arrived, then runs preprocessing, the forward pass
and formatting in the executor, off the event loop, and hands every caller its own answers.

Why the defaults are small (8 inputs, no wait): on a CPU one forward pass already uses every
core, so batching buys little throughput (flat for MiniLM, worse past 8 for
EfficientNet-Lite0: docs/measurements.md) while every input in a batch waits for the whole
batch. The size still adapts to load: an idle model runs a lone request at once, and under
load the batch is whatever queued during the previous forward pass, up to the cap. A wait
(``max_wait_ms``) only pays where batching multiplies throughput (a GPU): measured on 2 CPU
cores, the former 2 ms default was 2 ms added to every lone request and nothing gained.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ml.inference.errors import InputError
from ml.tasks import PredictOptions

logger = logging.getLogger(__name__)
Prediction = dict[str, Any]
# Before the first batch has been timed: a guess for Retry-After of the right magnitude.
_INITIAL_ITEM_MS = 20.0
_EMA_WEIGHT = 0.2


class Servable(Protocol):
    """What the batcher, the cache and the endpoint need from a model (ml.inference.Predictor
    provides it). ``check`` raises ValueError when the model cannot answer the options; the
    endpoint asks it before submitting."""

    memory_bytes: int  # an estimate, for the cache's budget

    def preprocess(self, inputs: Sequence[Any]) -> Any: ...
    def forward(self, batch: Any) -> np.ndarray: ...
    def postprocess(self, raw: np.ndarray) -> np.ndarray: ...
    def format(self, values: np.ndarray, options: PredictOptions) -> list[Prediction]: ...
    def check(self, options: PredictOptions) -> None: ...


class BatchObserver(Protocol):
    """Told about every batch; the endpoint layer feeds its Prometheus metrics from it."""

    def batch(self, size: int, queue_depth: int, inference_ms: float) -> None: ...


@dataclass
class Timing:
    queue_ms: float  # submit until the request's first input started running
    inference_ms: float  # time in the batches that carried its inputs (preprocess to format)
    batch_size: int  # the largest batch its inputs ran in
    forward_ms: float = 0.0  # of inference_ms, the model's forward passes alone


class QueueFull(Exception):
    """The model's queue cannot take the request now; answer 429 with Retry-After."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"prediction queue is full; retry after {retry_after_s:.2f} s")
        self.retry_after_s = retry_after_s


class BatcherClosed(RuntimeError):
    """The model was evicted or the process is stopping; the request was not answered."""


@dataclass(eq=False)
class _Request:
    items: Sequence[Any]
    options: PredictOptions
    future: "asyncio.Future[tuple[list[Prediction], Timing]]"
    enqueued: float = field(default_factory=time.perf_counter)
    results: list[Prediction | None] = field(default_factory=list)
    remaining: int = 0
    started: float | None = None
    inference_ms: float = 0.0
    forward_ms: float = 0.0
    batch_size: int = 0


@dataclass(frozen=True)
class _Item:
    request: _Request
    index: int  # position in its request


class Batcher:
    def __init__(
        self,
        predictor: Servable,
        *,
        max_batch_size: int = 8,
        max_wait_ms: float = 0.0,
        max_queue: int = 256,
        executor: Executor,
        observer: BatchObserver | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1:
            raise ValueError("max_batch_size and max_queue must be at least 1")
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self._executor = executor
        self._observer = observer
        self._queue: deque[_Item] = deque()
        self._running: list[_Item] = []
        self._arrived = asyncio.Event()  # the queue is not empty
        self._filled = asyncio.Event()  # the queue holds a full batch
        self._item_ms = _INITIAL_ITEM_MS
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._serve())

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._running)

    async def submit(
        self, items: Sequence[Any], options: PredictOptions
    ) -> tuple[list[Prediction], Timing]:
        """Predictions for ``items`` answering ``options``, in order; raises QueueFull at once
        when over capacity.

        A large request may be split over several batches, and one batch may carry requests
        that ask for different options. InputError names the bad input by its index in
        ``items``.
        """
        if self._closed:
            raise BatcherClosed("this model is no longer served here")
        if not items:
            return [], Timing(0.0, 0.0, 0)
        # An empty queue takes any request, so one larger than max_queue is slow, not refused.
        if self._queue and len(self._queue) + len(items) > self.max_queue:
            raise QueueFull(retry_after_s=len(self._queue) * self._item_ms / 1000)
        future: asyncio.Future[tuple[list[Prediction], Timing]] = (
            asyncio.get_running_loop().create_future()
        )
        request = _Request(
            items, options, future, results=[None] * len(items), remaining=len(items)
        )
        future.add_done_callback(lambda _: self._forget(request))
        self._queue.extend(_Item(request, i) for i in range(len(items)))
        self._arrived.set()
        if len(self._queue) >= self.max_batch_size:
            self._filled.set()
        return await future

    def shutdown(self) -> None:
        """Stop now: fail every waiting caller with BatcherClosed (callable outside a coroutine)."""
        self._closed = True
        self._task.cancel()
        for item in [*self._running, *self._queue]:
            if not item.request.future.done():
                item.request.future.set_exception(BatcherClosed("the model was unloaded"))
        self._queue.clear()

    async def close(self) -> None:
        self.shutdown()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def _forget(self, request: _Request) -> None:
        # A cancelled caller (client gone) frees its queue slots at once.
        if request.future.cancelled() and any(i.request is request for i in self._queue):
            self._queue = deque(i for i in self._queue if i.request is not request)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            self._running = batch
            start = time.perf_counter()
            for item in batch:
                if item.request.started is None:
                    item.request.started = start
            forward_ms, carried = 0.0, 0
            try:
                outcomes, forward_ms, carried = await loop.run_in_executor(
                    self._executor, self._infer, batch
                )
            except Exception as exc:  # the executor itself failed: the batcher goes on
                outcomes = [exc] * len(batch)
            elapsed_ms = (time.perf_counter() - start) * 1000
            self._running = []
            self._resolve(batch, outcomes, (elapsed_ms, forward_ms), carried)
            # Inputs of rejected requests do not count towards the time per input.
            answered = sum(not isinstance(outcome, Exception) for outcome in outcomes)
            if answered:
                self._item_ms += _EMA_WEIGHT * (elapsed_ms / answered - self._item_ms)
                self._observe(carried, elapsed_ms)

    def _observe(self, size: int, elapsed_ms: float) -> None:
        if self._observer is not None:
            try:
                self._observer.batch(size, len(self._queue), elapsed_ms)
            except Exception:  # metrics must never stop serving
                logger.exception("batch observer failed")

    async def _collect(self) -> list[_Item]:
        while True:
            await self._arrived.wait()
            if self._queue:
                wait = self._queue[0].request.enqueued + self.max_wait_s - time.perf_counter()
                if len(self._queue) < self.max_batch_size and wait > 0:
                    self._filled.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._filled.wait(), wait)
            batch: list[_Item] = []
            while self._queue and len(batch) < self.max_batch_size:
                item = self._queue.popleft()
                if not item.request.future.done():
                    batch.append(item)
            if not self._queue:
                self._arrived.clear()
            if batch:
                return batch

    def _infer(self, batch: list[_Item]) -> tuple[list[Prediction | Exception], float, int]:
        """Runs in the executor: each item's outcome, the forward passes' milliseconds and the
        size of the largest one. A bad input fails only its own request, never its batch mates.

        An InputError names its input: that input's request leaves and the rest run on as a
        batch. Any other failure of the batch (preprocessing, forward pass, formatting) cannot
        say whose input caused it, so the members run one by one: the culprit's request gets
        the error it gets alone, and every other request exactly its lone answer.
        """
        outcomes: list[Prediction | Exception | None] = [None] * len(batch)
        alive = list(range(len(batch)))
        while len(alive) > 1:
            try:
                predictions, forward_ms = self._run([batch[i] for i in alive])
            except InputError as exc:
                if not 0 <= exc.index < len(alive):
                    break
                culprit = batch[alive[exc.index]]
                self._fail(batch, outcomes, culprit.request, InputError(culprit.index, exc.message))
                alive = [i for i in alive if outcomes[i] is None]
                continue
            except Exception:
                logger.warning(
                    "a batch of %d inputs failed; running them one by one",
                    len(alive),
                    exc_info=True,
                )
                break
            for i, prediction in zip(alive, predictions, strict=True):
                outcomes[i] = prediction
            return _complete(outcomes), forward_ms, len(alive)
        forward_ms, carried = 0.0, 0
        for i in alive:
            item = batch[i]
            if outcomes[i] is not None:  # another input of its request failed meanwhile
                continue
            try:
                (prediction,), ms = self._run([item])
            except InputError as exc:
                self._fail(batch, outcomes, item.request, InputError(item.index, exc.message))
                continue
            except Exception as exc:
                self._fail(batch, outcomes, item.request, exc)
                continue
            outcomes[i] = prediction
            forward_ms += ms
            carried = 1
        return _complete(outcomes), forward_ms, carried

    def _run(self, items: Sequence[_Item]) -> tuple[list[Prediction], float]:
        """One batch through all four steps: its predictions and its forward pass's ms."""
        inputs = self.predictor.preprocess([item.request.items[item.index] for item in items])
        started = time.perf_counter()
        raw = self.predictor.forward(inputs)
        forward_ms = (time.perf_counter() - started) * 1000
        values = self.predictor.postprocess(raw)
        # Formatted once per distinct options among the batch's requests, rows kept in order.
        rows_of: dict[PredictOptions, list[int]] = {}
        for row, item in enumerate(items):
            rows_of.setdefault(item.request.options, []).append(row)
        predictions: list[Prediction | None] = [None] * len(items)
        for options, rows in rows_of.items():
            for row, prediction in zip(
                rows, self.predictor.format(values[rows], options), strict=True
            ):
                predictions[row] = prediction
        return [p for p in predictions if p is not None], forward_ms

    @staticmethod
    def _fail(
        batch: list[_Item],
        outcomes: list[Prediction | Exception | None],
        request: _Request,
        error: Exception,
    ) -> None:
        """Every input of ``request`` in the batch fails with ``error``."""
        for i, item in enumerate(batch):
            if item.request is request:
                outcomes[i] = error

    def _resolve(
        self,
        batch: list[_Item],
        outcomes: list[Prediction | Exception],
        times_ms: tuple[float, float],  # the batch's whole run, and its forward passes
        size: int,  # the largest forward pass
    ) -> None:
        for request in {item.request for item in batch}:
            request.inference_ms += times_ms[0]
            request.forward_ms += times_ms[1]
            request.batch_size = max(request.batch_size, size)
        for item, outcome in zip(batch, outcomes, strict=True):
            request = item.request
            if request.future.done():  # cancelled, or failed by another of its inputs
                continue
            if isinstance(outcome, Exception):
                request.future.set_exception(outcome)
                continue
            request.results[item.index] = outcome
            request.remaining -= 1
            if request.remaining == 0:
                queue_ms = ((request.started or request.enqueued) - request.enqueued) * 1000
                timing = Timing(
                    queue_ms, request.inference_ms, request.batch_size, request.forward_ms
                )
                request.future.set_result(([r for r in request.results if r is not None], timing))


def _complete(outcomes: list[Prediction | Exception | None]) -> list[Prediction | Exception]:
    assert all(outcome is not None for outcome in outcomes), "every input has an outcome"
    return [outcome for outcome in outcomes if outcome is not None]
