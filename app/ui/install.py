"""install_ui: the dashboard's routes, static files, security headers and error pages on
the API app (kept out of the package's __init__, so its modules import each other freely)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.errors import AppError, problem_response
from app.ui.auth import CsrfRefused, SessionUnavailable, SignInRequired
from app.ui.headers import UiHeadersMiddleware
from app.ui.render import STATIC, error_page
from app.ui.routes import api, datasets, jobs, models, session
from app.ui.secret import SecretKeeper

API_PREFIX = "/ui/api/"


def install_ui(app: FastAPI) -> None:
    app.state.ui_secret = SecretKeeper(app.state.storage.store)
    for module in (session, datasets, jobs, models, api):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(UiHeadersMiddleware)

    @app.get("/", include_in_schema=False)
    async def _root() -> Response:
        return RedirectResponse("/ui", status_code=307)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/signin?next={_quoted(target)}", status_code=303)
        return RedirectResponse("/ui/signin", status_code=303)

    @app.exception_handler(CsrfRefused)
    @app.exception_handler(SessionUnavailable)
    async def _refused(request: Request, exc: AppError) -> Response:
        """Refused before any handler ran: a problem for scripts, a page for pages."""
        if request.url.path.startswith(API_PREFIX):
            answer: JSONResponse = problem_response(
                exc.status, exc.title, exc.detail, exc.code, headers=exc.headers
            )
            return answer
        return error_page(request, exc)


def _quoted(path: str) -> str:
    return quote(path, safe="/")
