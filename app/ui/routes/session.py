"""Signing in and out, and the overview page."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from app.auth.key_format import MAX_KEY_CHARS
from app.db import commit
from app.deps import SessionDep
from app.ui import session as cookies
from app.ui.auth import CsrfRefused, FormPost, PageSigned, current, keeper, sign_in, sign_out
from app.ui.render import page, render
from app.ui.views import overview

router = APIRouter(prefix="/ui", include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if not target or not target.startswith("/ui") or target.startswith("//"):
        return "/ui"
    if any(c in target for c in "\\\r\n") or "://" in target:
        return "/ui"
    return target


async def _signin_form(
    request: Request, next_url: str, error: str | None = None, status: int = 200
) -> Response:
    secret = await run_in_threadpool(keeper(request).current)
    nonce = secrets.token_urlsafe(16)
    token = cookies.csrf_token(secret, nonce, "signin")
    context = {"next": safe_next(next_url), "token": token, "error": error}
    response = render(request, "signin.html", context, status=status)
    cookies.set_cookie(request, response, cookies.SIGNIN_COOKIE, nonce, cookies.SIGNIN_SECONDS)
    return response


@router.get("/signin")
@page
async def signin_page(
    request: Request, next_url: Annotated[str, Query(alias="next", max_length=2000)] = "/ui"
) -> Response:
    if await current(request) is not None:
        return RedirectResponse(safe_next(next_url), status_code=303)
    return await _signin_form(request, next_url)


@router.post("/signin")
@page
async def signin(
    request: Request,
    session: SessionDep,
    api_key: Annotated[str, Form(max_length=MAX_KEY_CHARS)] = "",
    token: Annotated[str, Form(alias=cookies.CSRF_FIELD, max_length=200)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/ui",
) -> Response:
    secret = await run_in_threadpool(keeper(request).current)
    nonce = request.cookies.get(cookies.SIGNIN_COOKIE, "")
    if (
        not cookies.same_origin(request)
        or not nonce
        or not cookies.token_matches(secret, nonce, token, "signin")
    ):
        raise CsrfRefused("Refused: reload the sign-in page and try again.")
    key = api_key.strip()

    def _start() -> cookies.UiSession | None:
        ui = sign_in(session, key)
        if ui is not None:
            commit(session)
        return ui

    ui = await run_in_threadpool(_start) if key else None
    if ui is None:
        message = "That key is not valid (or was revoked). Check it and try again."
        return await _signin_form(request, next_url, message, 401)
    response = RedirectResponse(safe_next(next_url), status_code=303)
    value = cookies.encode_session(secret, ui)
    cookies.set_cookie(request, response, cookies.SESSION_COOKIE, value, cookies.SESSION_SECONDS)
    cookies.clear_cookie(request, response, cookies.SIGNIN_COOKIE)
    return response


@router.post("/signout")
@page
async def signout(request: Request, signed: FormPost, session: SessionDep) -> Response:
    def _end() -> None:
        sign_out(session, signed)
        commit(session)

    await run_in_threadpool(_end)
    response = RedirectResponse("/ui/signin", status_code=303)
    cookies.clear_cookie(request, response, cookies.SESSION_COOKIE)
    return response


@router.get("")
@page
def overview_page(request: Request, signed: PageSigned, session: SessionDep) -> Response:
    return render(request, "overview.html", overview.build(signed.project, session))


@router.get("/")
def trailing_slash() -> Response:
    return RedirectResponse("/ui", status_code=307)
