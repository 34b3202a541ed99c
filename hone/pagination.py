"""Auto-paging iterators over the API's lists (`{"data", "has_more"}`, `?limit=&after=`).

The first page is fetched when the list is asked for, so a refused key or an unreachable
server raises at the call, not at the first `next()`; later pages are fetched as the caller
iterates, so a long list is never held whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from hone._transport import Transport

T = TypeVar("T", bound=BaseModel)
MAX_PAGE = 100  # the API's largest `limit`


def paginate(
    transport: Transport,
    path: str,
    model: type[T],
    *,
    params: dict[str, Any] | None = None,
    limit: int | None = None,
    cursor: Callable[[dict[str, Any]], Any] = lambda item: item["id"],
) -> Iterator[T]:
    """Every item of the list at `path`, newest first, at most `limit` of them (all when
    None). `cursor` gives the `after` of the next page from the last item of this one."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    page_size = min(limit or MAX_PAGE, MAX_PAGE)
    base = dict(params or {})

    def fetch(after: Any) -> dict[str, Any]:
        query = {**base, "limit": page_size} | ({"after": after} if after is not None else {})
        body: dict[str, Any] = transport.json("GET", path, params=query)
        return body

    first = fetch(None)

    def items() -> Iterator[T]:
        page, left = first, limit
        while True:
            data: list[dict[str, Any]] = page.get("data") or []
            for item in data:
                if left is not None:
                    if left <= 0:
                        return
                    left -= 1
                yield model.model_validate(item)
            if not page.get("has_more") or not data or left == 0:
                return
            page = fetch(cursor(data[-1]))

    return items()
