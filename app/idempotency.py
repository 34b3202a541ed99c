"""`Idempotency-Key` for writes that create work: the same key and body within 24 h returns
the first result and creates nothing new; the same key with another body is a 422."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, Unprocessable
from app.models import IdempotencyKey
from app.models.base import utcnow

TTL = timedelta(hours=24)


def find(
    session: Session, project_id: str, endpoint: str, key: str | None, request_hash: str
) -> str | None:
    """The resource id created earlier under this key, or None."""
    if not key:
        return None
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.project_id == project_id, IdempotencyKey.created_at < utcnow() - TTL
        )
    )
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.project_id == project_id,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key == key,
        )
    )
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request.",
            code="idempotency_key_reused",
        )
    return row.resource_id


def remember(
    session: Session,
    project_id: str,
    endpoint: str,
    key: str | None,
    request_hash: str,
    resource_id: str,
) -> None:
    if not key:
        return
    row = IdempotencyKey(
        project_id=project_id,
        endpoint=endpoint,
        key=key,
        request_hash=request_hash,
        resource_id=resource_id,
    )
    try:
        # A savepoint: losing a race to a concurrent request with the same key fails only
        # this insert, and the caller answers 409 instead of a 500 at commit.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(
            "Another request with this Idempotency-Key is in progress or just finished; "
            "retry it to get its result.",
            code="idempotency_key_in_use",
        ) from None
