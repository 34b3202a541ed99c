"""Rendering pages: the Jinja2 environment (autoescaped), the shared context, error pages."""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.errors import AppError, outage
from app.ui import formatting
from app.ui.auth import Signed

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

F = TypeVar("F", bound=Callable[..., Any])


def _static_version() -> str:
    """A digest of every static file: their URLs change when they do (no stale scripts)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


VERSION = _static_version()


def static_url(name: str) -> str:
    return f"/ui/static/{name}?v={VERSION}"


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals["static_url"] = static_url
env.filters.update(formatting.FILTERS)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    signed: Signed | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    if signed is None:
        signed = getattr(request.state, "ui_signed", None)
    values = {
        "request": request,
        "path": request.url.path,
        "project": signed.project if signed else None,
        "csrf": signed.csrf if signed else "",
        **(context or {}),
    }
    html = env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=headers)


def error_page(request: Request, exc: AppError) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"status": exc.status, "title": exc.title, "detail": exc.detail, "code": exc.code},
        status=exc.status,
        headers=exc.headers,
    )


def page(handler: F) -> F:
    """A page handler whose domain errors (another project's dataset: 404) answer as pages."""
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def async_page(*args: Any, **kwargs: Any) -> Response:
            request = _request_of(args, kwargs)
            try:
                response: Response = await handler(*args, **kwargs)
                return response
            except Exception as exc:
                return _failure_page(request, exc)

        return cast(F, async_page)

    @functools.wraps(handler)
    def sync_page(*args: Any, **kwargs: Any) -> Response:
        request = _request_of(args, kwargs)
        try:
            response: Response = handler(*args, **kwargs)
            return response
        except Exception as exc:
            return _failure_page(request, exc)

    return cast(F, sync_page)


def _failure_page(request: Request, exc: Exception) -> HTMLResponse:
    """A domain error or an outage (database, store, broker: 503) as a page; anything else
    is a bug, raised on to the server's own handling."""
    if isinstance(exc, AppError):
        return error_page(request, exc)
    problem = outage(exc)
    if problem is None:
        raise exc
    return error_page(request, problem)


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Request):
            return value
    raise TypeError("a page handler takes the Request")
