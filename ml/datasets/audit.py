"""The data-quality audit: duplicates and skips, plus the task's own section, in one report."""

from typing import Any

from ml.datasets.advice import advise
from ml.datasets.duplicates import deduplicate
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits
from ml.datasets.records import MAX_LISTED, Candidate, SkipLog
from ml.tasks import Task

# Sources listed per duplicate group: enough to find them, bounded for 10,000 copies of one image.
MAX_SOURCES = 20


def _field(task: Task, candidate: Candidate) -> str:
    """The manifest row's target field ("labels", "target"): duplicates are reported in it."""
    return next(iter(task.row_target(candidate.target)))


def _exact_entry(task: Task, group: list[Candidate]) -> dict[str, object]:
    return {
        "sources": [c.source for c in group[:MAX_SOURCES]],
        **task.row_target(group[0].target),
        "count": len(group),
    }


def _conflict_entry(task: Task, group: list[Candidate]) -> dict[str, object]:
    field = _field(task, group[0])
    return {
        "sources": [c.source for c in group[:MAX_SOURCES]],
        f"{field}_by_source": {
            c.source: task.row_target(c.target)[field] for c in group[:MAX_SOURCES]
        },
        "count": len(group),
    }


def audit(
    task: Task, candidates: list[Candidate], skips: SkipLog, limits: IngestLimits
) -> tuple[list[Candidate], dict[str, Any]]:
    """The examples to store and the JSON-serializable report; raises IngestError (with the
    report) when no model of ``task`` can be trained on what is left."""
    duplicates = deduplicate(candidates)
    kept = duplicates.kept
    report: dict[str, Any] = {
        "num_examples": len(kept),
        "skipped": list(skips.listed),
        "skipped_counts": dict(sorted(skips.counts.items())),
        "exact_duplicates": [_exact_entry(task, g) for g in duplicates.exact[:MAX_LISTED]],
        "conflicting_duplicates": [
            _conflict_entry(task, g) for g in duplicates.conflicting[:MAX_LISTED]
        ],
        "duplicate_counts": {
            "exact_groups": len(duplicates.exact),
            "removed": duplicates.removed,
            "conflicting_groups": len(duplicates.conflicting),
        },
    }
    noun = _field(task, kept[0]) if kept else "targets"
    general = advise(kept, duplicates, skips, noun if noun.endswith("s") else f"{noun}s")
    try:
        section, warnings = task.audit(kept, skips, limits)
    except IngestError as error:
        # The task's refusal carries its own section; the user gets the whole report.
        partial = dict(error.report or {})
        own = partial.pop("warnings", [])
        error.report = {**report, **partial, "warnings": [*own, *general] if kept else own}
        raise
    return kept, {**report, **section, "warnings": [*warnings, *general]}
