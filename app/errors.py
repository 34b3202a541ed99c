"""One error hierarchy, rendered one way: RFC 9457 problem details."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.storage.errors import StorageUnavailable

log = logging.getLogger("hone.api.errors")

PROBLEM = "application/problem+json"
# When a client should retry a request refused because a shared part (the database, the object
# store, the broker) could not be reached: long enough for a restart or a failover to be seen.
OUTAGE_RETRY_AFTER_SECONDS = 5
# What SQLAlchemy raises when the database is gone, was restarted, terminated this connection
# (pg_terminate_backend: psycopg's AdminShutdown, an OperationalError), is locked (SQLite's
# "database is locked") or when no pooled connection became free in time (TimeoutError). Never
# a bug in the request: it can be retried as it is.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)


class AppError(Exception):
    status = 400
    title = "Bad request"
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.code
        self.errors = errors
        self.headers = headers
        self.extra = extra


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status, title, code = 401, "Unauthorized", "unauthorized"


class NotFound(AppError):
    status, title, code = 404, "Not found", "not_found"


class Conflict(AppError):
    status, title, code = 409, "Conflict", "conflict"


class PayloadTooLarge(AppError):
    status, title, code = 413, "Payload too large", "payload_too_large"


class UnsupportedMediaType(AppError):
    status, title, code = 415, "Unsupported media type", "unsupported_media_type"


class Unprocessable(AppError):
    status, title, code = 422, "Unprocessable content", "validation_error"


class Overloaded(AppError):
    status, title, code = 429, "Too many requests", "overloaded"


class Unavailable(AppError):
    status, title, code = 503, "Service unavailable", "unavailable"


class RequestTimeout(StarletteHTTPException):
    """408: the request body stalled. An HTTPException, not an AppError, because it is raised
    from inside the body read, where FastAPI lets only HTTPException through unchanged."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, headers={"Connection": "close"})


class BodyTooLarge(StarletteHTTPException):
    """413 raised from inside the body read (see RequestTimeout for why an HTTPException)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail, headers={"Connection": "close"})


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
}


_BY_STATUS: dict[int, type[AppError]] = {
    c.status: c
    for c in (
        BadRequest,
        Unauthorized,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        Overloaded,
        Unavailable,
    )
}


def error_for_status(status: int, detail: str, **kwargs: Any) -> AppError:
    cls = _BY_STATUS.get(status, BadRequest)
    return cls(detail, **kwargs)


class Problem(BaseModel):
    """The shape of every error answer (declared in `responses=` so OpenAPI shows it)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(status, title, detail, code, errors=errors, extra=extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def problem_body(
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://hone.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    return body


def outage(exc: BaseException) -> Unavailable | None:
    """The 503 for an error that says a shared part is down (None for any other error). The
    cause is logged here, not sent: it names hosts and ports the client has no use for."""
    from app.queue import BrokerUnavailable  # here: the queue imports Celery

    if isinstance(exc, DATABASE_ERRORS):
        orig = getattr(exc, "orig", None)
        busy = "database is locked" in str(orig or exc)
        part, code = "database", "database_unavailable"
        what = (
            "The database is busy (locked by another writer)"
            if busy
            else "The database could not be reached or did not answer in time"
        )
    elif isinstance(exc, StorageUnavailable):
        part, code = "object store", "storage_unavailable"
        what = "The object store could not be reached or did not answer in time"
    elif isinstance(exc, BrokerUnavailable):
        part, code = "broker", "broker_unavailable"
        what = "The task queue (broker) could not be reached"
    else:
        return None
    log.warning("%s unavailable", part, extra={"part": part, "error": short_reason(exc)})
    return Unavailable(
        f"{what}, so the request could not be completed. This is temporary: retry the "
        f"request after {OUTAGE_RETRY_AFTER_SECONDS} s.",
        code=code,
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)},
    )


def short_reason(exc: BaseException) -> str:
    """`Type: first line of the message`, for a log line (drivers' messages run to many)."""
    first_line = str(exc).partition("\n")[0]
    return f"{type(exc).__name__}: {first_line}"[:300]


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            exc.code,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    async def _outage(_: Request, exc: Exception) -> JSONResponse:
        problem = outage(exc)
        if problem is None:  # not registered for anything else
            raise exc
        return problem_response(
            problem.status, problem.title, problem.detail, problem.code, headers=problem.headers
        )

    from app.queue import BrokerUnavailable

    for cls in (*DATABASE_ERRORS, StorageUnavailable, BrokerUnavailable):
        app.add_exception_handler(cls, _outage)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _loc_to_field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(422, "Invalid request", detail, "validation_error", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        try:
            title = HTTPStatus(exc.status_code).phrase
        except ValueError:
            title = str(exc.detail)
        return problem_response(
            exc.status_code,
            title,
            str(exc.detail),
            code,
            headers=headers,
        )


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: Starlette's 405 names only the first matching route's,
    and FastAPI makes one route per method. Each method is tried against the routing table."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        "description": cls.title,
    }
    for status, cls in _BY_STATUS.items()
}
PROBLEM_RESPONSES[503] |= {
    "description": "Service unavailable: a part it needs is down (`database_unavailable`, "
    "`storage_unavailable`, `broker_unavailable`) or a model cannot be loaded now; retry after "
    "`Retry-After` seconds",
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
