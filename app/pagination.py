"""Cursor paging shared by every list endpoint: newest first, `?limit=&after=<id>`.

Ids start with a millisecond timestamp, so ordering by id is ordering by creation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
Item = TypeVar("Item")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def page(
    session: Session,
    stmt: Select[T],
    id_column: InstrumentedAttribute[Any],
    *,
    limit: int,
    after: str | None,
) -> tuple[Sequence[T], bool]:
    """Return up to `limit` rows older than `after`, and whether more exist."""
    if after:
        stmt = stmt.where(id_column < after)
    rows = session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit


class ListOf(BaseModel, Generic[Item]):
    """The body of every list endpoint: `{"object": "list", "data": [...], "has_more": ...}`."""

    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
