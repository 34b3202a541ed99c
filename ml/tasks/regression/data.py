"""Regression's data section: numbers from the target column(s), their audit, the manifest."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.datasets.advice import Warning, some, warn
from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.refusals import no_examples_error
from ml.tasks import tasks_for
from ml.tasks.base import Modality, Target
from ml.tasks.regression.audit import target_stats
from ml.tasks.regression.targets import parse_targets, target_names

MIN_EXAMPLES = 2
# A target whose spread is below this fraction of its size carries little more than rounding.
RELATIVE_STD = 1e-6
FEW_DISTINCT = 3
OUTLIER_FRACTION = 0.01  # warn once this share of a target's values are outliers
# Rows whose target is text: past this share of the rows read, the column holds labels.
TEXT_TARGET_SHARE = 0.9
TARGET_SKIPS = ("invalid_target", "missing_target")


def _value(x: float) -> str:
    return f"{x:g}"


def _names(kept: list[Candidate]) -> tuple[str, ...]:
    width = len(kept[0].target)
    if kept[0].columns and len(kept[0].columns) == width:
        return kept[0].columns
    return ("target",) if width == 1 else tuple(f"target_{i + 1}" for i in range(width))


def _warnings(name: str, stats: dict[str, Any], classify: str) -> list[Warning]:
    warnings = []
    if stats["distinct"] < FEW_DISTINCT:
        warnings.append(
            warn(
                "few_target_values",
                f"Target {name!r} takes only {stats['distinct']} distinct values "
                f"({_value(stats['min'])} and {_value(stats['max'])}). If they are classes, "
                f"task {classify} fits them better: regression predicts in-between numbers.",
            )
        )
    elif stats["std"] <= RELATIVE_STD * abs(stats["mean"]):
        warnings.append(
            warn(
                "nearly_constant_target",
                f"Target {name!r} barely varies: std {stats['std']:.3g} around a mean of "
                f"{stats['mean']:.6g}. The model learns the rounding noise; check that "
                "target_column names the right column, or subtract the constant part.",
            )
        )
    found = stats["outliers"]
    if found["count"] and found["count"] >= OUTLIER_FRACTION * stats["count"]:
        listed = [f"{o['source']}: {_value(o['value'])}" for o in found["listed"]]
        warnings.append(
            warn(
                "target_outliers",
                f"{found['count']} of {stats['count']} values of {name!r} are far from the "
                f"rest (robust z-score above {found['threshold']:g}), e.g. {some(listed)}. "
                "Check them for typos or unit mistakes; if the target is heavy-tailed "
                "(prices, counts), consider predicting its logarithm.",
            )
        )
    return warnings


def _skipped_targets(skips: SkipLog) -> list[Warning]:
    counts = {reason: skips.counts[reason] for reason in TARGET_SKIPS if skips.counts[reason]}
    if not counts:
        return []
    first = next((s for s in skips.listed if s["reason"] in TARGET_SKIPS), None)
    example = f" For example {first['source']}: {first['detail']}." if first else ""
    reasons = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
    return [
        warn(
            "skipped_targets",
            f"{sum(counts.values())} rows were skipped because their target is missing or not "
            f"a number ({reasons}).{example} Fill in plain numbers (3.5, -2, 1e4) to use them.",
        )
    ]


class RegressionData:
    """The data section of ``Task`` for regression (see ml/tasks/base.py)."""

    name: str
    modality: Modality
    family: str
    target_field = "target_column"  # the request field naming the target column(s)

    def columns(self, options: IngestOptions) -> tuple[str, ...]:
        return target_names(options)

    def parse_target(self, cells: Sequence[object], options: IngestOptions) -> Target:
        return parse_targets(cells, self.columns(options))

    def merge_targets(self, known: Target, new: Target, options: IngestOptions) -> Target:
        if new != known:
            shown = ", ".join(_value(x) for x in known)
            raise SkipExampleError(
                "invalid_target", f"it has the target {shown} there; list each image once"
            )
        return known

    def audit(
        self, kept: list[Candidate], skips: SkipLog, limits: IngestLimits
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        text_targets = skips.counts["invalid_target"]
        if text_targets and text_targets >= TEXT_TARGET_SHARE * (text_targets + len(kept)):
            raise self._labels_given(skips, text_targets + len(kept))
        if len(kept) < MIN_EXAMPLES:
            raise no_examples_error(skips, {"warnings": []}, len(kept), MIN_EXAMPLES)
        names = _names(kept)
        values = np.array([example.target for example in kept], dtype=np.float64)
        sources = [example.source for example in kept]
        stats = {name: target_stats(values[:, i], sources) for i, name in enumerate(names)}
        section = {"targets": list(names), "target_stats": stats}
        classify = self._other_family()
        warnings = [w for name in names for w in _warnings(name, stats[name], classify)]
        warnings += _skipped_targets(skips)
        constant = [i for i, name in enumerate(names) if stats[name]["distinct"] < 2]
        if constant:
            name, value = names[constant[0]], _value(values[0, constant[0]])
            raise IngestError(
                "constant_target",
                f"Target {name!r} has the same value ({value}) in all {len(kept)} usable "
                "examples: there is nothing to learn. Check that "
                "target_column names the right column, or add examples with other values.",
                report={**section, "warnings": warnings},
            )
        return section, warnings

    def _other_family(self) -> str:
        """The tasks that fit labels on this modality: "text_classification"."""
        other = [task.name for task in tasks_for(self.modality) if task.family == "classification"]
        return " or ".join(other) or "classification"

    def _labels_given(self, skips: SkipLog, seen: int) -> IngestError:
        first = next((s for s in skips.listed if s["reason"] == "invalid_target"), None)
        example = f" (e.g. {first['source']}: {first['detail']})" if first else ""
        return IngestError(
            "wrong_task",
            f"The target column holds text, not numbers, in {skips.counts['invalid_target']} "
            f"of {seen} rows{example}. If these are classes, use task "
            f"{self._other_family()} with label_column set to that column; if they are "
            "numbers, write them plainly (3.5, -2, 1e4).",
            field="task",
            report={"warnings": []},
        )

    def manifest_header(self, kept: list[Candidate], options: IngestOptions) -> dict[str, Any]:
        return {"multilabel": False, "targets": list(self.columns(options))}

    def row_target(self, target: Target) -> dict[str, Any]:
        return {"target": [float(x) for x in target]}

    def read_target(self, row: dict[str, Any]) -> Target:
        target = row.get("target")
        if not isinstance(target, list) or not target:
            raise ValueError("an example has no target values")
        if not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            for x in target
        ):
            raise ValueError("an example's target values are not all finite numbers")
        return tuple(float(x) for x in target)
