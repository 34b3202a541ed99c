"""Who is signed in: the session cookie checked against the registry, as dependencies.

A session is a row of `ui_sessions` (app/ui/repository.py) named by a signed cookie
(session.py). Signing in runs the API's own key check (app/auth/keys.py `authenticate`) and
adds the row; each request checks the cookie's signature (no database read for a forgery),
then, in one primary-key lookup, that the row is there and unexpired and that its key is
unrevoked; signing out deletes the row. So every API process and host refuses a signed-out
session, or one of a revoked or deleted key, at once, a replayed copy of its cookie too. When
the database (or the store holding the secret) cannot be reached, the answer is the API's 503.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import authenticate, key_digest
from app.errors import DATABASE_ERRORS, AppError, Unauthorized, Unavailable, outage
from app.models import Project
from app.models.base import utcnow
from app.storage.errors import StorageUnavailable
from app.ui import repository
from app.ui import session as cookies
from app.ui.secret import SecretKeeper

# What the check cannot be done without: the database, and the store that keeps the secret.
_OUTAGES: tuple[type[Exception], ...] = (*DATABASE_ERRORS, StorageUnavailable)


class SignInRequired(Exception):
    """A page was asked for without a valid session: answered with the sign-in page."""


class CsrfRefused(AppError):
    status, title, code = 403, "Forbidden", "csrf_failed"


class SessionUnavailable(Unavailable):
    """The session could not be checked: the database or the store is down. Answered as the
    API answers that outage (503, its code, `Retry-After`): a page for pages, a problem
    for scripts."""


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


def sign_in(session: Session, key: str) -> cookies.UiSession | None:
    """A new session for a valid key, its row added (the endpoint commits), or None."""
    project = authenticate(session, key)
    if project is None:
        return None
    digest = key_digest(key)
    key_id = repository.key_id(session, project.id, digest)
    if key_id is None:
        return None
    ui = cookies.UiSession.new(project.id, key_id, digest)
    issued = datetime.fromtimestamp(ui.issued, UTC)
    repository.add(
        session,
        ui.nonce,
        project_id=project.id,
        api_key_id=key_id,
        created_at=issued,
        expires_at=issued + timedelta(seconds=cookies.SESSION_SECONDS),
    )
    return ui


def sign_out(session: Session, signed: Signed) -> None:
    """End the session: its row goes (the endpoint commits), so every API process refuses
    its cookie from then on, a copy of it too; the answer deletes the browser's."""
    repository.remove(session, signed.session.nonce)


def _session_project(sessions: sessionmaker[Session], ui: cookies.UiSession) -> Project | None:
    """The project of the cookie's session if its row is live and its key still valid."""
    with sessions() as db:
        found = repository.find(db, ui.nonce)
        if found is None:
            return None
        row, key, project = found
        if row.expires_at <= utcnow() or key.revoked_at is not None:
            return None
        if row.api_key_id != ui.key_id or {row.project_id, key.project_id} != {ui.project_id}:
            return None
        # The key row was given another secret since (register_key): not the key signed in with.
        if not hmac.compare_digest(key.key_hash, ui.key_digest):
            return None
        db.expunge(project)  # detached, loaded: safe to use after the session closes
        return project


async def current(request: Request) -> Signed | None:
    """The request's valid session, or None (worked out once per request)."""
    if hasattr(request.state, "ui_signed"):
        found: Signed | None = request.state.ui_signed
        return found
    try:
        signed = await _check(request)
    except _OUTAGES as exc:
        problem = outage(exc)
        if problem is None:  # never: each of these is an outage
            raise
        detail, code, headers = problem.detail, problem.code, problem.headers
        raise SessionUnavailable(detail, code=code, headers=headers) from exc
    request.state.ui_signed = signed
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
    factory = request.app.state.session_factory
    project = await run_in_threadpool(_session_project, factory, ui)
    return None if project is None else Signed(ui, project, secret)


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
