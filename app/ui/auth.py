"""Who is signed in: the session cookie checked against the registry, as dependencies.

Signing in runs the API's own key check (app/deps.py `_authenticate`). Afterwards each request
checks that the key the session was made with still exists, unrevoked, through the same
`auth_cache` the API uses for keys: a revoked key stops working here within
`auth_cache_seconds`, as it does on /v1.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import key_digest
from app.deps import _authenticate
from app.errors import AppError, Unauthorized
from app.models import ApiKey, Project
from app.ttl_cache import TtlCache
from app.ui import session as cookies
from app.ui.secret import SecretKeeper


class SignInRequired(Exception):
    """A page was asked for without a valid session: answered with the sign-in page."""


class CsrfRefused(AppError):
    status, title, code = 403, "Forbidden", "csrf_failed"


@dataclass(frozen=True)
class Signed:
    """A valid session, its project, and the secret it was checked with."""

    session: cookies.UiSession
    project: Project
    secret: bytes

    @property
    def csrf(self) -> str:
        return cookies.csrf_token(self.secret, self.session.nonce)


def keeper(request: Request) -> SecretKeeper:
    found: SecretKeeper = request.app.state.ui_secret
    return found


def _key_project(sessions: sessionmaker[Session], s: cookies.UiSession) -> Project | None:
    with sessions() as db:
        row = db.get(ApiKey, s.key_id)
        if row is None or row.revoked_at is not None or row.project_id != s.project_id:
            return None
        if not hmac.compare_digest(row.key_hash, s.key_digest):
            return None
        project = db.get(Project, row.project_id)
        if project is not None:
            db.expunge(project)
        return project


def _key_id(sessions: sessionmaker[Session], project_id: str, digest: str) -> str | None:
    with sessions() as db:
        found: str | None = db.scalar(
            select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.key_hash == digest)
        )
        return found


async def sign_in(request: Request, key: str) -> cookies.UiSession | None:
    """A new session for a valid key, or None. The key is checked by the API's own code."""
    factory = request.app.state.session_factory
    project = await run_in_threadpool(_authenticate, factory, key)
    if project is None:
        return None
    digest = key_digest(key)
    key_id = await run_in_threadpool(_key_id, factory, project.id, digest)
    return None if key_id is None else cookies.UiSession.new(project.id, key_id, digest)


async def current(request: Request) -> Signed | None:
    """The request's valid session, or None (worked out once per request)."""
    if hasattr(request.state, "ui_signed"):
        found: Signed | None = request.state.ui_signed
        return found
    request.state.ui_signed = signed = await _check(request)
    return signed


async def _check(request: Request) -> Signed | None:
    raw = request.cookies.get(cookies.SESSION_COOKIE)
    if not raw:
        return None
    secrets = keeper(request)
    secret = await run_in_threadpool(secrets.current)
    ui = cookies.decode_session(secret, raw)
    if ui is None:
        newer = await run_in_threadpool(secrets.refreshed)
        if newer is None or (ui := cookies.decode_session(newer, raw)) is None:
            return None
        secret = newer
    signed_out: TtlCache[str, bool] = request.app.state.ui_signed_out
    if signed_out.get(ui.nonce):
        return None
    cache: TtlCache[str, Project] = request.app.state.auth_cache
    project = cache.get(ui.key_digest)
    if project is None or project.id != ui.project_id:
        factory = request.app.state.session_factory
        project = await run_in_threadpool(_key_project, factory, ui)
        if project is None:
            return None
        cache.put(ui.key_digest, project)
    return Signed(ui, project, secret)


async def page_signed(request: Request) -> Signed:
    signed = await current(request)
    if signed is None:
        raise SignInRequired()
    return signed


async def api_signed(request: Request) -> Signed:
    signed = await current(request)
    if signed is None:
        raise Unauthorized("Sign in to the dashboard first.", code="not_signed_in")
    return signed


def _check_csrf(request: Request, signed: Signed, token: str | None) -> None:
    if not cookies.same_origin(request):
        raise CsrfRefused("Refused: the request came from another site.", code="cross_origin")
    if not cookies.token_matches(signed.secret, signed.session.nonce, token):
        raise CsrfRefused(
            "Refused: the form's security token is missing or stale. Reload the page and try "
            "again.",
        )


async def form_csrf(request: Request, signed: Annotated[Signed, Depends(page_signed)]) -> Signed:
    """A page's form post: its hidden `csrf_token` field must be this session's."""
    form = await request.form()
    token = form.get(cookies.CSRF_FIELD)
    _check_csrf(request, signed, token if isinstance(token, str) else None)
    return signed


async def header_csrf(request: Request, signed: Annotated[Signed, Depends(api_signed)]) -> Signed:
    """A script's request: its `X-CSRF-Token` header must be this session's. The body is not
    read here (an upload streams to disk in its handler)."""
    _check_csrf(request, signed, request.headers.get(cookies.CSRF_HEADER))
    return signed


PageSigned = Annotated[Signed, Depends(page_signed)]
ApiSigned = Annotated[Signed, Depends(api_signed)]
FormPost = Annotated[Signed, Depends(form_csrf)]
ScriptPost = Annotated[Signed, Depends(header_csrf)]


def sign_out(request: Request, signed: Signed) -> None:
    """End the session: the browser's cookie is deleted by the answer, and this process
    refuses the cookie from now on, should a copy of it be replayed. (Other API processes
    refuse it once it expires, or at once when the key is revoked.)"""
    signed_out: TtlCache[str, bool] = request.app.state.ui_signed_out
    signed_out.put(signed.session.nonce, True)
