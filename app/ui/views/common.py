"""Pieces every page's view uses: paging links and status badges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

PAGE_SIZE = 25

STATUS_KIND = {
    "ready": "ok",
    "succeeded": "ok",
    "processing": "busy",
    "running": "busy",
    "registering": "busy",
    "queued": "wait",
    "cancelling": "wait",
    "failed": "bad",
    "cancelled": "muted",
}


@dataclass(frozen=True)
class Paging:
    """Newest first, as the API pages: a link to the next (older) page and back to the first."""

    next_url: str | None
    first_url: str | None
    count: int


def paging(
    base: str, items: Sequence[Any], has_more: bool, after: str | None, cursor: str | None,
    **params: str | None,
) -> Paging:  # fmt: skip
    kept = {k: v for k, v in params.items() if v}
    next_url = None
    if has_more and cursor:
        next_url = f"{base}?{urlencode({**kept, 'after': cursor})}"
    first_url = None
    if after:
        first_url = f"{base}?{urlencode(kept)}" if kept else base
    return Paging(next_url, first_url, len(items))
