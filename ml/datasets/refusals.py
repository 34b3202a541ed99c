"""Refusals shared by every task's audit: what was read, and why nothing can be trained on it."""

from typing import Any

from ml.datasets.errors import IngestError
from ml.datasets.records import SkipLog


def skipped_summary(skips: SkipLog | None) -> str:
    """Why examples were dropped, in one sentence: a refusal must say what was read."""
    if skips is None or not skips.total:
        return ""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    first = skips.listed[0] if skips.listed else None
    example = f" For example {first['source']!r}: {first['detail']}." if first else ""
    return f" {skips.total} examples were skipped ({reasons}).{example} See the report."


def no_examples_error(
    skips: SkipLog, report: dict[str, Any], kept: int = 0, needed: int = 1
) -> IngestError:
    """Nothing (or fewer than ``needed`` examples) is left once unusable items are skipped."""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    example = ""
    if skips.listed:
        first = skips.listed[0]
        example = f" For example {first['source']!r}: {first['detail']}."
    remain = (
        "No usable examples remain"
        if not kept
        else f"Only {kept} usable example remains and at least {needed} are needed"
    )
    return IngestError(
        "no_examples",
        f"{remain} ({skips.total} skipped: {reasons or 'none found'}).{example}",
        report=report,
    )
