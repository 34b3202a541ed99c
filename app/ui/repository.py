"""All SQL of the dashboard's sessions (ui_sessions): add, find, delete. Flush, never commit:
the sign-in and sign-out endpoints commit."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import ApiKey, DashboardSession, Project

# Expired rows deleted by one sign-in, oldest first: each sign-in adds one row and may take
# away this many, so the table stays near the number of live sessions, with no background
# thread and no unbounded statement.
SWEEP_ROWS = 100


def row_id(nonce: str) -> str:
    """A session's primary key: the SHA-256 of its cookie's nonce, never the nonce itself."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def key_id(session: Session, project_id: str, digest: str) -> str | None:
    found: str | None = session.scalar(
        select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.key_hash == digest)
    )
    return found


def add(
    session: Session,
    nonce: str,
    *,
    project_id: str,
    api_key_id: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    """Record a new session, after deleting up to SWEEP_ROWS expired ones."""
    expired = (
        select(DashboardSession.id)
        .where(DashboardSession.expires_at <= created_at)
        .order_by(DashboardSession.expires_at)
        .limit(SWEEP_ROWS)
        # PostgreSQL: rows another sign-in is deleting now are left to it (no wait, no
        # deadlock); SQLite has one writer at a time and no such clause.
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(DashboardSession)
        .where(DashboardSession.id.in_(expired.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    session.add(
        DashboardSession(
            id=row_id(nonce),
            project_id=project_id,
            api_key_id=api_key_id,
            created_at=created_at,
            expires_at=expires_at,
        )
    )
    session.flush()


def find(session: Session, nonce: str) -> tuple[DashboardSession, ApiKey, Project] | None:
    """The session, its key and its project, in one primary-key lookup (None: no such row)."""
    found = session.execute(
        select(DashboardSession, ApiKey, Project)
        .join(ApiKey, ApiKey.id == DashboardSession.api_key_id)
        .join(Project, Project.id == DashboardSession.project_id)
        .where(DashboardSession.id == row_id(nonce))
    ).first()
    return None if found is None else (found[0], found[1], found[2])


def remove(session: Session, nonce: str) -> None:
    session.execute(delete(DashboardSession).where(DashboardSession.id == row_id(nonce)))
    session.flush()
