"""Annotated dependencies shared by every router."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import authenticate, key_digest
from app.config import Settings
from app.errors import DATABASE_ERRORS, Unauthorized, short_reason
from app.models import Project
from app.storage.places import Storage
from app.ttl_cache import TtlCache

log = logging.getLogger("hone.api")
_bearer = HTTPBearer(auto_error=False, description="A Hone API key: `hone keys create`.")


async def get_settings(request: Request) -> Settings:
    # async: a plain function dependency would be run in the thread pool, a hop per request.
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """Endpoints that write call `app.db.commit(session)`; anything uncommitted is rolled back."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        try:
            session.rollback()
        except DATABASE_ERRORS as exc:
            # The database went away after the last query: its transaction went with the
            # connection, and this runs once the answer is sent, when raising helps nobody.
            log.warning(
                "rollback failed: the database connection was lost",
                extra={"error": short_reason(exc)},
            )
        finally:
            session.close()


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


SettingsDep = Annotated[Settings, Depends(get_settings)]
StorageDep = Annotated[Storage, Depends(get_storage)]
SessionDep = Annotated[Session, Depends(get_session)]


def _authenticate(session_factory: sessionmaker[Session], key: str) -> Project | None:
    with session_factory() as session:
        project = authenticate(session, key)
        if project is not None:
            session.expunge(project)  # detached, loaded: safe to share between requests
        return project


async def get_project(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Project:
    """The key's project. Valid keys are remembered for `auth_cache_seconds` (app/ttl_cache.py),
    so a hot endpoint (prediction) does not pay a database round trip per request; a revoked
    key is refused within that time. The lookup runs off the event loop on its own short
    session, so no request holds a database connection while it waits for anything else."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise Unauthorized(
            "Missing API key: send `Authorization: Bearer <key>`.", headers=challenge
        )
    cache: TtlCache[str, Project] = request.app.state.auth_cache
    digest = key_digest(credentials.credentials)
    project = cache.get(digest)
    if project is None:
        project = await run_in_threadpool(
            _authenticate, request.app.state.session_factory, credentials.credentials
        )
        if project is None:
            raise Unauthorized(
                "Invalid or revoked API key.", code="invalid_api_key", headers=challenge
            )
        cache.put(digest, project)
    return project


ProjectDep = Annotated[Project, Depends(get_project)]
