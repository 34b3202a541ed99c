"""Classification's data section: label cells, labels.csv merging, the label audit, the manifest.

A single-label example has one label; a multilabel one has a sorted set of them. Labels are
strings (JSON integers are class ids and become their decimal string).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ml.datasets.advice import Warning, some, warn
from ml.datasets.errors import IngestError
from ml.datasets.numbers import parse_number
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.refusals import no_examples_error, skipped_summary
from ml.tasks import tasks_for
from ml.tasks.base import Modality, Target

# Labels become JSON keys, metric names and API fields: long ones are almost always a
# mis-assigned column (e.g. the text in the label column).
MAX_LABEL_CHARS = 200
IMBALANCE_RATIO = 3.0  # largest / smallest label count above which training favours the large
# Labels that are measurements, not classes: this many distinct values, nearly all of them
# numbers and most not whole. Small integers (0/1, 1-5 stars) and half stars stay classes.
NUMERIC_MIN_DISTINCT = 20
NUMERIC_SHARE = 0.95
FRACTIONAL_SHARE = 0.5


def clean_label(raw: str) -> str:
    # macOS zips store folder names decomposed (NFD) while typed text is composed (NFC):
    # without this "café/" and a CSV's "café" would be two labels.
    label = unicodedata.normalize("NFC", raw).strip()
    if not label:
        raise SkipExampleError("missing_label", "the label is empty")
    if len(label) > MAX_LABEL_CHARS:
        raise SkipExampleError(
            "invalid_label",
            f"the label is {len(label)} characters long (at most {MAX_LABEL_CHARS}); "
            "is the label column the right one?",
        )
    try:
        label.encode("utf-8")
    except UnicodeEncodeError as error:  # a JSON "\ud800" escape decodes to a lone surrogate
        raise SkipExampleError("invalid_label", "the label has invalid unicode escapes") from error
    return label


def _one(value: object) -> str:
    # JSON numbers are common class ids (0/1); bools and floats are almost always a mistake.
    if isinstance(value, str):
        return clean_label(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise SkipExampleError(
        "invalid_label", f"a label must be a string or an integer, not {json.dumps(value)}"
    )


def _split_cell(cell: str) -> list[object]:
    stripped = cell.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError) as error:
            raise SkipExampleError(
                "invalid_label", f"the label list is not valid JSON ({error})"
            ) from error
        if not isinstance(parsed, list):
            raise SkipExampleError("invalid_label", "the label list is not a JSON list")
        return parsed
    return list(stripped.split("|"))


def parse_labels(value: object, multilabel: bool) -> tuple[str, ...]:
    """Sorted unique labels from a CSV cell (str) or a JSON value; raises SkipExampleError.

    Multilabel values are a JSON list (``["a","b"]``, in a CSV cell or as a JSONL value) or
    ``a|b|c``. Single-label values are taken whole: ``a|b`` is one label, and a JSON list is
    an error because it shows the user meant multilabel.
    """
    if value is None:
        raise SkipExampleError("missing_label", "there is no label")
    if not multilabel:
        if isinstance(value, list):
            raise SkipExampleError(
                "invalid_label",
                "a list of labels needs multilabel=true; this dataset is single-label",
            )
        return (_one(value),)
    items = _split_cell(value) if isinstance(value, str) else value
    if not isinstance(items, list):
        items = [items]
    labels = {_one(item) for item in items if not (isinstance(item, str) and not item.strip())}
    if not labels:
        raise SkipExampleError("missing_label", "the label list is empty")
    return tuple(sorted(labels))


def single_label_error(
    label: str, skips: SkipLog | None = None, report: dict[str, Any] | None = None
) -> IngestError:
    return IngestError(
        "single_label",
        f"Every usable example has the label {label!r}. Classification needs at least two "
        "labels: add examples of another label (another folder in a zip, or rows with "
        "another label in the file)." + skipped_summary(skips),
        report=report,
    )


def _imbalance(label_counts: dict[str, int]) -> list[Warning]:
    largest = max(label_counts, key=lambda label: label_counts[label])
    smallest = min(label_counts, key=lambda label: label_counts[label])
    ratio = label_counts[largest] / label_counts[smallest]
    if ratio <= IMBALANCE_RATIO:
        return []
    return [
        warn(
            "imbalanced_labels",
            f"{largest!r} has {label_counts[largest]} examples but {smallest!r} only "
            f"{label_counts[smallest]} ({ratio:.1f}x). Consider collecting more {smallest!r} "
            "examples; until then expect it to be predicted less often.",
        )
    ]


def _too_small(too_small: list[dict[str, Any]]) -> list[Warning]:
    if not too_small:
        return []
    names = [f"{entry['label']} ({entry['count']})" for entry in too_small]
    return [
        warn(
            "labels_too_small",
            f"{len(too_small)} label(s) have fewer than {too_small[0]['minimum']} "
            f"examples: {some(names)}. Collect more examples of them or remove them; a label "
            "needs examples in both the training and the validation split.",
        )
    ]


def _fractional_numbers(labels: Sequence[str]) -> list[str] | None:
    """The labels that are numbers with a fractional part, when the labels look like
    measurements (see NUMERIC_*); None when they look like classes."""
    if len(labels) < NUMERIC_MIN_DISTINCT:
        return None
    numbers = {}
    for label in labels:
        try:
            numbers[label] = parse_number(label, "label")
        except SkipExampleError:
            continue
    fractional = [label for label, x in numbers.items() if not x.is_integer()]
    if len(numbers) < NUMERIC_SHARE * len(labels) or len(fractional) < FRACTIONAL_SHARE * len(
        labels
    ):
        return None
    return fractional


class ClassificationData:
    """The data section of ``Task`` for classification (see ml/tasks/base.py)."""

    name: str
    modality: Modality
    family: str
    target_field = "label_column"  # the request field naming the target column

    def columns(self, options: IngestOptions) -> tuple[str, ...]:
        return (options.label_column,)

    def parse_target(self, cells: Sequence[object], options: IngestOptions) -> Target:
        (value,) = cells
        return parse_labels(value, options.multilabel)

    def merge_targets(self, known: Target, new: Target, options: IngestOptions) -> Target:
        if options.multilabel:  # one row per (file, label) pair is a common multilabel layout
            return tuple(sorted({*known, *new}))
        if new != known:
            raise SkipExampleError(
                "invalid_label",
                f"it has label {known[0]!r} there; use multilabel=true to give an image "
                "several labels",
            )
        return known

    def audit(
        self, kept: list[Candidate], skips: SkipLog, limits: IngestLimits
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        counts = Counter(label for example in kept for label in example.target)
        label_counts = dict(sorted(counts.items()))
        too_small = [
            {"label": label, "count": n, "minimum": limits.min_examples_per_label}
            for label, n in label_counts.items()
            if n < limits.min_examples_per_label
        ]
        section: dict[str, Any] = {
            "num_labels": len(label_counts),
            "label_counts": label_counts,
            "imbalance_ratio": max(counts.values()) / min(counts.values()) if counts else None,
            "labels_too_small": too_small,
        }
        if not kept:
            raise no_examples_error(skips, {**section, "warnings": []})
        warnings = [*_imbalance(label_counts), *_too_small(too_small)]
        report = {**section, "warnings": warnings}
        fractional = _fractional_numbers(list(label_counts))
        if fractional is not None:
            raise self._regression_shaped(kept, label_counts, fractional, report)
        if len(counts) < 2:
            raise single_label_error(next(iter(counts)), skips, report)
        return section, warnings

    def _regression_shaped(
        self,
        kept: list[Candidate],
        label_counts: dict[str, int],
        fractional: list[str],
        report: dict[str, Any],
    ) -> IngestError:
        column = kept[0].columns[0] if kept[0].columns else "<the label column>"
        fitting = " or ".join(
            task.name for task in tasks_for(self.modality) if task.family == "regression"
        )
        return IngestError(
            "wrong_task",
            f"The labels look like measured numbers, not classes: {len(label_counts)} distinct "
            f"values, {len(fractional)} of them with decimals (e.g. {some(fractional)}). "
            f"A classifier would treat every value as its own class. To predict the number, "
            f"use task {fitting or 'regression'} with target_column={column}; to classify, "
            "use labels that name classes.",
            field="task",
            report=report,
        )

    def manifest_header(self, kept: list[Candidate], options: IngestOptions) -> dict[str, Any]:
        return {
            "multilabel": options.multilabel,
            "labels": sorted({label for example in kept for label in example.target}),
        }

    def row_target(self, target: Target) -> dict[str, Any]:
        return {"labels": list(target)}

    def read_target(self, row: dict[str, Any]) -> Target:
        labels = row.get("labels")
        if not isinstance(labels, list) or not labels:
            raise ValueError("an example has no labels")
        return tuple(str(label) for label in labels)
