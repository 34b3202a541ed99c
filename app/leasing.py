"""The lease columns' SQL, shared by the jobs and datasets repositories: at most one live
attempt per row, and every message the broker lost sent again.

A leased row has `lease_owner` (the attempt holding it), `lease_expires_at` (when that hold
ends unless renewed), `attempts` and `enqueued_at` (when its message was last sent; NULL: not
sent). Every transition is a compare-and-set UPDATE guarded by the owner, or by the expiry and
the row as it was read, so an attempt that lost its lease (it stalled past the expiry and the
reaper gave the row to another) can never overwrite the row: its updates simply match no row.
The repositories give the statuses (a job is leased while running or cancelling, a dataset
while processing); app/jobs/lifecycle.py and app/datasets/lifecycle.py decide when to call.
Flushes, never commits.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Result, exists, or_, select, update
from sqlalchemy.orm import Session

from app.models import Dataset, Job
from app.models.base import utcnow

Leased = type[Job] | type[Dataset]
Row = TypeVar("Row", Job, Dataset)
RELEASED: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}


def _changed(result: Result[Any]) -> bool:
    return bool(getattr(result, "rowcount", 0))


def _free(model: Leased, now: datetime) -> ColumnElement[bool]:
    """No live attempt holds the row: never leased, released, or its lease expired."""
    return or_(model.lease_owner.is_(None), model.lease_expires_at < now)


def claim(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    lease_seconds: float,
    now: datetime,
    claimable: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Take the row's lease if it is claimable and no live attempt holds it; one more attempt."""
    result = session.execute(
        update(model)
        .where(model.id == row_id, claimable, _free(model, now))
        .values(
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=model.__table__.c.attempts + 1,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def set_if_owned(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    statuses: Collection[str],
    values: dict[str, Any],
) -> bool:
    """Apply `values` if `owner` still holds the row in one of `statuses`; False otherwise."""
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.lease_owner == owner, model.status.in_(list(statuses)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def renew(
    session: Session,
    model: Leased,
    row_id: str,
    owner: str,
    lease_seconds: float,
    statuses: Collection[str],
) -> bool:
    """Extend `owner`'s lease by `lease_seconds` from now; False once the row is not its own."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    return set_if_owned(session, model, row_id, owner, statuses, {"lease_expires_at": expires})


def expired(
    session: Session, model: type[Row], held: ColumnElement[bool], now: datetime
) -> list[Row]:
    """Rows `held` by an attempt whose lease has expired: its worker is gone."""
    stmt = select(model).where(
        held, or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)
    )
    return list(session.scalars(stmt))


def take_over(session: Session, row: Job | Dataset, now: datetime, **values: object) -> bool:
    """Release an expired lease, setting `values`: compare-and-set, only if the row is still as
    it was read (no live attempt renewed it meanwhile)."""
    model = type(row)
    result = session.execute(
        update(model)
        .where(
            model.id == row.id,
            model.status == row.status,
            model.lease_owner.is_not_distinct_from(row.lease_owner),
            or_(model.lease_expires_at.is_(None), model.lease_expires_at < now),
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def any_live(session: Session, model: Leased, held: ColumnElement[bool], now: datetime) -> bool:
    """Whether some row is `held` under a lease that has not expired."""
    return bool(session.scalar(select(exists().where(held, model.lease_expires_at >= now))))


def waiting(
    session: Session,
    model: Leased,
    is_waiting: ColumnElement[bool],
    now: datetime,
    sent_before: datetime | None,
) -> list[str]:
    """Ids of free waiting rows never sent, or (with `sent_before`) last sent before it."""
    unsent = model.enqueued_at.is_(None)
    stmt = select(model.id).where(
        is_waiting,
        unsent if sent_before is None else or_(unsent, model.enqueued_at < sent_before),
        _free(model, now),
    )
    return list(session.scalars(stmt).all())


def mark_sent(
    session: Session, model: Leased, row_id: str, is_waiting: ColumnElement[bool], now: datetime
) -> bool:
    """Record that the row's message is sent at `now`, if it is still waiting."""
    result = session.execute(
        update(model)
        .where(model.id == row_id, is_waiting)
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    return _changed(result)


def mark_unsent(session: Session, model: Leased, ids: Collection[str], sent_at: datetime) -> None:
    """Back to "not sent" (enqueued_at NULL): the rows of `ids` marked sent at `sent_at`."""
    session.execute(
        update(model)
        .where(model.id.in_(list(ids)), model.enqueued_at == sent_at)
        .values(enqueued_at=None)
        .execution_options(synchronize_session=False)
    )
