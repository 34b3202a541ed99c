"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.config import Settings
from app.errors import PROBLEM_RESPONSES, Unauthorized

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database and broker reachable (503 otherwise)")
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state

    def _database() -> None:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks: dict[str, str] = {}
    for name, probe in (("database", _database), ("broker", state.queue.ping)):
        try:
            await run_in_threadpool(probe)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is reported
            checks[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


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
