"""The data-quality audit: label statistics, duplicates and skips gathered into the report."""

from collections import Counter
from typing import Any

from ml.datasets.advice import advise
from ml.datasets.duplicates import deduplicate
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits
from ml.datasets.records import MAX_LISTED, Candidate, SkipLog

# Sources listed per duplicate group: enough to find them, bounded for 10,000 copies of one image.
MAX_SOURCES = 20


def _skipped_summary(skips: SkipLog) -> str:
    """Why examples were dropped, in one sentence: a refusal must say what was read."""
    if not skips.total:
        return ""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    first = skips.listed[0] if skips.listed else None
    example = f" For example {first['source']!r}: {first['detail']}." if first else ""
    return f" {skips.total} examples were skipped ({reasons}).{example} See the report."


def single_label_error(
    label: str, skips: SkipLog | None = None, report: dict[str, Any] | None = None
) -> IngestError:
    return IngestError(
        "single_label",
        f"Every usable example has the label {label!r}. Classification needs at least two "
        "labels: add examples of another label (another folder in a zip, or rows with "
        "another label in the file)." + (_skipped_summary(skips) if skips else ""),
        report=report,
    )


def _no_examples_error(skips: SkipLog, report: dict[str, Any]) -> IngestError:
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    example = ""
    if skips.listed:
        first = skips.listed[0]
        example = f" For example {first['source']!r}: {first['detail']}."
    return IngestError(
        "no_examples",
        f"No usable examples remain ({skips.total} skipped: {reasons or 'none found'}).{example}",
        report=report,
    )


def _exact_entry(group: list[Candidate]) -> dict[str, object]:
    return {
        "sources": [c.source for c in group[:MAX_SOURCES]],
        "labels": list(group[0].labels),
        "count": len(group),
    }


def _conflict_entry(group: list[Candidate]) -> dict[str, object]:
    return {
        "sources": [c.source for c in group[:MAX_SOURCES]],
        "labels_by_source": {c.source: list(c.labels) for c in group[:MAX_SOURCES]},
        "count": len(group),
    }


def audit(
    candidates: list[Candidate], skips: SkipLog, limits: IngestLimits
) -> tuple[list[Candidate], dict[str, Any]]:
    """The examples to store and the JSON-serializable report; raises IngestError when the
    upload cannot make a classification dataset (nothing usable, or a single label)."""
    duplicates = deduplicate(candidates)
    kept = duplicates.kept
    counts = Counter(label for example in kept for label in example.labels)
    label_counts = dict(sorted(counts.items()))
    too_small = [
        {"label": label, "count": n, "minimum": limits.min_examples_per_label}
        for label, n in label_counts.items()
        if n < limits.min_examples_per_label
    ]
    report: dict[str, Any] = {
        "num_examples": len(kept),
        "num_labels": len(label_counts),
        "label_counts": label_counts,
        "imbalance_ratio": max(counts.values()) / min(counts.values()) if counts else None,
        "skipped": list(skips.listed),
        "skipped_counts": dict(sorted(skips.counts.items())),
        "exact_duplicates": [_exact_entry(g) for g in duplicates.exact[:MAX_LISTED]],
        "conflicting_duplicates": [_conflict_entry(g) for g in duplicates.conflicting[:MAX_LISTED]],
        "duplicate_counts": {
            "exact_groups": len(duplicates.exact),
            "removed": duplicates.removed,
            "conflicting_groups": len(duplicates.conflicting),
        },
        "labels_too_small": too_small,
    }
    if not kept:
        report["warnings"] = []
        raise _no_examples_error(skips, report)
    report["warnings"] = advise(kept, label_counts, too_small, duplicates, skips)
    if len(counts) < 2:
        raise single_label_error(next(iter(counts)), skips, report)
    return kept, report
