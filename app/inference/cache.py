"""The model cache: each model version loaded once per API process, least recently used out.

Loads run in a dedicated thread (a one-thread pool, so two cold models never load at once and
double the memory peak), never on the event loop. Concurrent first requests for a model share
one load. Forward passes of every cached model share one inference executor; by default it
has one thread, because a forward pass already uses all the cores torch was given and two at
once would only fight over them.
"""

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.inference.batcher import Batcher, BatchObserver, Servable

logger = logging.getLogger(__name__)
CacheKey = Hashable


class ModelLoadError(Exception):
    """The model could not be loaded (answer 503); the next request tries again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class LoadedModel:
    key: CacheKey
    predictor: Servable
    batcher: Batcher
    leases: int = 0  # requests inside ModelCache.use(); a leased model is never evicted

    @property
    def memory_bytes(self) -> int:
        return self.predictor.memory_bytes

    @property
    def in_use(self) -> bool:
        return self.leases > 0 or self.batcher.busy


class ModelCache:
    def __init__(
        self,
        loader: Callable[[CacheKey], Servable],
        *,
        memory_budget_bytes: int,
        executor: Executor | None = None,
        max_batch_size: int = 8,
        max_wait_ms: float = 0.0,
        max_queue: int = 256,
        observer: Callable[[CacheKey], BatchObserver | None] | None = None,
    ) -> None:
        """``executor`` runs forward passes (default: one thread, owned and shut down here);
        ``observer`` gives each model's batcher its metrics observer."""
        self._loader = loader
        self.memory_budget_bytes = memory_budget_bytes
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="hone-infer")
        self._load_executor = ThreadPoolExecutor(1, thread_name_prefix="hone-load")
        self._max_batch_size = max_batch_size
        self._max_wait_ms = max_wait_ms
        self._max_queue = max_queue
        self._observer = observer
        self._entries: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._loading: dict[CacheKey, asyncio.Future[LoadedModel]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def memory_bytes(self) -> int:
        return sum(model.memory_bytes for model in self._entries.values())

    def loaded_keys(self) -> list[CacheKey]:
        """Cached keys, least recently used first."""
        return list(self._entries)

    async def get(self, key: CacheKey) -> LoadedModel:
        """The loaded model, loading it first if needed; ModelLoadError if that fails."""
        if self._closed:
            raise ModelLoadError("the model cache is closed")
        model = self._entries.get(key)
        if model is not None:
            self._entries.move_to_end(key)
            return model
        future = self._loading.get(key)
        if future is None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            # Retrieve the outcome even if every waiter went away, so a failure is not logged
            # as "never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._loading[key] = future
            task = loop.create_task(self._load(key, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # shield: a waiter that disconnects must not cancel the load the others wait for.
        return await asyncio.shield(future)

    @asynccontextmanager
    async def use(self, key: CacheKey) -> AsyncIterator[LoadedModel]:
        """``get`` plus a lease that keeps the model from eviction until the block ends."""
        model = await self.get(key)
        model.leases += 1
        try:
            yield model
        finally:
            model.leases -= 1

    def evict(self, key: CacheKey) -> None:
        """Forget a model (its version was deleted): stop its batcher, drop any load under way."""
        model = self._entries.pop(key, None)
        if model is not None:
            model.batcher.shutdown()
        # The load still finishes in its thread; _load sees it was dropped and discards it.
        self._loading.pop(key, None)

    async def close(self) -> None:
        self._closed = True
        for future in self._loading.values():
            if not future.done():
                future.set_exception(ModelLoadError("the model cache is closing"))
        self._loading.clear()
        models = list(self._entries.values())
        self._entries.clear()
        for model in models:
            await model.batcher.close()
        self._load_executor.shutdown(wait=False, cancel_futures=True)
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _load(self, key: CacheKey, future: "asyncio.Future[LoadedModel]") -> None:
        loop = asyncio.get_running_loop()
        try:
            predictor = await loop.run_in_executor(self._load_executor, self._loader, key)
        except Exception as exc:
            logger.warning("loading model %r failed: %s", key, exc)
            if self._loading.get(key) is future:
                del self._loading[key]  # not cached: the next request retries
            if not future.done():
                future.set_exception(ModelLoadError(f"{type(exc).__name__}: {exc}"))
            return
        if self._loading.get(key) is not future:  # evicted or closed while loading
            if not future.done():
                future.set_exception(ModelLoadError("the model was unloaded while loading"))
            return
        del self._loading[key]
        observer = self._observer(key) if self._observer is not None else None
        batcher = Batcher(
            predictor,
            max_batch_size=self._max_batch_size,
            max_wait_ms=self._max_wait_ms,
            max_queue=self._max_queue,
            executor=self._executor,
            observer=observer,
        )
        model = LoadedModel(key, predictor, batcher)
        self._entries[key] = model
        self._trim(keep=model)
        future.set_result(model)

    def _trim(self, keep: LoadedModel) -> None:
        """Evict least recently used models, skipping busy ones, until under budget."""
        for key, model in list(self._entries.items()):
            if self.memory_bytes <= self.memory_budget_bytes:
                return
            if model is not keep and not model.in_use:
                self.evict(key)
        if self.memory_bytes > self.memory_budget_bytes:
            logger.warning(
                "model cache holds %d bytes, over its %d-byte budget: the rest is in use",
                self.memory_bytes,
                self.memory_budget_bytes,
            )
