"""API keys: generated once, shown once, stored as a SHA-256 digest.

A key Hone generates looks like ``hone_<12 char lookup prefix><secret>``: the prefix finds the
row with an indexed lookup. An operator's own secret (``HONE_BOOTSTRAP_API_KEY``, e.g. from
``openssl rand -hex 32``) may have any form of 32 printable characters or more
(app/auth/key_format.py); its
row is found by a prefix of its digest instead. Either way the digest is then compared with
`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.key_format import key_problem
from app.models import ApiKey, Project
from app.models.base import utcnow

KEY_PREFIX = "hone_"
_LOOKUP_LEN = 12
_SECRET_LEN = 16  # the least a generated key carries after its lookup prefix
_DIGEST_LOOKUP = "sha256:"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lookup(key: str) -> str | None:
    if key_problem(key) is not None:
        return None
    if key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + _LOOKUP_LEN + _SECRET_LEN:
        return key[len(KEY_PREFIX) : len(KEY_PREFIX) + _LOOKUP_LEN]
    # An operator's secret of another form: a digest prefix, which no generated key's
    # hexadecimal lookup can equal (it has a colon).
    return _DIGEST_LOOKUP + key_digest(key)[:_LOOKUP_LEN]


def ensure_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(name=name)
        session.add(project)
        session.flush()
    return project


def create_key(session: Session, project_name: str, *, name: str = "") -> str:
    """Create a new key for the project (created if missing); returns the plaintext key."""
    project = ensure_project(session, project_name)
    key = KEY_PREFIX + secrets.token_hex(_LOOKUP_LEN // 2) + secrets.token_urlsafe(32)
    session.add(
        ApiKey(project_id=project.id, prefix=_lookup(key), key_hash=key_digest(key), name=name)
    )
    session.flush()
    return key


def register_key(session: Session, key: str, project_name: str) -> None:
    """Make an operator-chosen key (HONE_BOOTSTRAP_API_KEY) valid for the project."""
    lookup = _lookup(key)
    if lookup is None:
        raise ValueError(
            f"an API key {key_problem(key)}; generate one with `openssl rand -hex 32` "
            "or `hone keys create`."
        )
    project = ensure_project(session, project_name)
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == lookup))
    if row is None:
        session.add(
            ApiKey(project_id=project.id, prefix=lookup, key_hash=key_digest(key), name="bootstrap")
        )
    else:
        row.key_hash, row.project_id, row.revoked_at = key_digest(key), project.id, None
    session.flush()


def authenticate(session: Session, key: str) -> Project | None:
    lookup = _lookup(key)
    if lookup is None:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == lookup))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, key_digest(key)):
        return None
    return session.get(Project, row.project_id)


def list_keys(session: Session, project_name: str | None = None) -> list[tuple[ApiKey, str]]:
    """(key row, its project's name) of every key, or of one project's, oldest first."""
    query = select(ApiKey, Project.name).join(Project, Project.id == ApiKey.project_id)
    if project_name is not None:
        query = query.where(Project.name == project_name)
    rows = session.execute(query.order_by(ApiKey.created_at, ApiKey.id)).all()
    return [(key, name) for key, name in rows]


def revoke_key(session: Session, key_id: str) -> ApiKey | None:
    """Mark the key with this id revoked (a key already revoked keeps its time); None if no
    key has the id. The API refuses it within its ``auth_cache_seconds``."""
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def has_any_key(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None
