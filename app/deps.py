"""Annotated dependencies shared by every router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth.keys import authenticate
from app.config import Settings
from app.errors import Unauthorized
from app.models import Project

_bearer = HTTPBearer(auto_error=False, description="A Hone API key: `hone keys create`.")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """Endpoints that write call `app.db.commit(session)`; anything uncommitted is rolled back."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_project(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Project:
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise Unauthorized(
            "Missing API key: send `Authorization: Bearer <key>`.", headers=challenge
        )
    project = authenticate(session, credentials.credentials)
    if project is None:
        raise Unauthorized("Invalid or revoked API key.", code="invalid_api_key", headers=challenge)
    # Hand the connection back to the pool now: a long request (a prediction waiting in the
    # batcher, an upload streaming in) must not pin a database connection while it waits.
    session.expunge(project)
    session.rollback()
    return project


ProjectDep = Annotated[Project, Depends(get_project)]
