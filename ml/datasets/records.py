"""What the collectors hand to the audit: kept candidates and a bounded log of skipped items."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

# A huge broken upload must not turn into a huge report: list this many, count the rest.
MAX_LISTED = 1000


@dataclass(frozen=True)
class Candidate:
    """One usable example before deduplication."""

    source: str  # where the user can find it: "cat/0001.jpg" or "line 12"
    # what the task parsed (ml.tasks.base.Target): sorted unique labels, or one number per target
    target: tuple[Any, ...]
    key: str  # what duplicates are judged by: the image bytes' sha256 or the normalized text
    text: str | None = None
    file: str | None = None  # "files/<sha256>.<ext>" inside the dataset directory
    min_side: int | None = None  # an image's smaller dimension in pixels
    # The upload's columns the target was read from (the task's columns(options)): the audit
    # names targets and columns with them, since it is not given the options.
    columns: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[Any, ...]:
        """Classification's name for the target."""
        return self.target


class SkipExampleError(Exception):
    """One file or row is unusable; the rest of the upload goes on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class SkipLog:
    """Skipped items: every one counted by reason, the first MAX_LISTED listed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.listed: list[dict[str, str]] = []

    def add(self, source: str, reason: str, detail: str) -> None:
        self.counts[reason] += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append({"source": source, "reason": reason, "detail": detail})

    def add_error(self, source: str, error: SkipExampleError) -> None:
        self.add(source, error.reason, error.detail)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
