"""Cursor paging shared by every list endpoint: newest first, `?limit=&after=<id>`.

Ids start with a millisecond timestamp, so ordering by id is ordering by creation time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
Item = TypeVar("Item")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# A cursor is an id or a model name from the previous page: their alphabet, bounded.
CURSOR_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]


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
