"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.datastructures import State

from app.config import Settings
from app.errors import PROBLEM_RESPONSES, Unauthorized

router = APIRouter(tags=["operations"])

# Bound on each readiness probe: /readyz answers within about this long, whatever hangs.
PROBE_TIMEOUT_SECONDS = 3.0
# Looked up, never written: whether it exists does not matter, only that the store answers.
STORE_PROBE_KEY = "readyz-probe"


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]  # database, broker, storage: "ok" or "unavailable: <reason>"


class _Probes:
    """At most one probe of each part in flight. A probe that outlasts its bound keeps its
    thread (a thread cannot be cancelled); the next /readyz waits on it instead of starting
    another, so a hung part never piles up threads."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def check(self, name: str, probe: Callable[[], Any]) -> str:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (the app restarted in this process)
            self._running, self._loop = {}, loop
        task = self._running.get(name)
        if task is None or task.done():
            task = asyncio.ensure_future(run_in_threadpool(probe))
            task.add_done_callback(_retrieve)
            self._running[name] = task
        # asyncio.wait leaves the probe running when the bound passes (wait_for would cancel it).
        done, _ = await asyncio.wait({task}, timeout=PROBE_TIMEOUT_SECONDS)
        if not done:
            return f"unavailable: no answer within {PROBE_TIMEOUT_SECONDS:g} s"
        exc = task.exception()  # any failure means not ready; the reason is reported
        if exc is not None:
            return f"unavailable: {type(exc).__name__}: {exc}"[:300]
        return "ok"


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # seen by the /readyz that waited, or by none: never "not retrieved"


def _probes(state: State) -> _Probes:
    probes: _Probes | None = getattr(state, "readiness_probes", None)
    if probes is None:
        probes = state.readiness_probes = _Probes()
    return probes


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database, broker and object store reachable (503 naming the part otherwise)",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A part is unreachable: see `checks`"}},
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state

    def _database() -> None:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _storage() -> None:
        state.storage.store.exists(STORE_PROBE_KEY)

    parts = {"database": _database, "broker": state.queue.ping, "storage": _storage}
    probes = _probes(state)
    results = await asyncio.gather(*(probes.check(n, p) for n, p in parts.items()))
    checks = dict(zip(parts, results, strict=True))
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (with HONE_METRICS_TOKEN set: `Authorization: Bearer <token>`)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        401: PROBLEM_RESPONSES[401],
    },
)
async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        _check_token(request, settings.metrics_token.get_secret_value())
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


def _check_token(request: Request, token: str) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized(
            "/metrics needs `Authorization: Bearer <HONE_METRICS_TOKEN>`.",
            code="invalid_metrics_token",
            headers={"WWW-Authenticate": "Bearer"},
        )
