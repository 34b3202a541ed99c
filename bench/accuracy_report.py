"""bench/accuracy.py's rows, the candidates `auto` tried, and the verdict against the goals."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import markdown_table

CV_BASELINE = "baseline: features + LR (C by 5-fold CV)"
HEADLINE = "val_macro_f1"  # the classification tasks' headline validation score
MAX_TIME_RATIO = 4.0  # auto's train time / the CV-tuned baseline's (features + fit)


@dataclass
class Row:
    data: str  # the dataset's name
    method: str
    kept: str  # what the job kept (auto chooses), or "-" for a baseline
    train_s: float  # upload -> artifact for the service (ingest excluded), features + fit else
    predict_s: float  # the whole test set, raw inputs -> labels
    accuracy: float
    macro_f1: float
    val_macro_f1: float | None  # the service's own validation estimate
    # What the job tried (TrainOutcome.metrics["candidates"]) and planned; empty from an
    # engine that reports neither.
    candidates: list[dict[str, Any]] = field(default_factory=list)
    plan: dict[str, Any] | None = None

    def cells(self) -> list[str]:
        val = "-" if self.val_macro_f1 is None else f"{self.val_macro_f1:.4f}"
        return [
            self.data, self.method, self.kept, f"{self.accuracy:.4f}",
            f"{self.macro_f1:.4f}", val, f"{self.train_s:.1f}", f"{self.predict_s:.1f}",
        ]  # fmt: skip


def render(rows: Sequence[Row]) -> str:
    headers = [
        "data", "method", "kept", "test accuracy", "test macro-F1", "val macro-F1",
        "train s", "predict s",
    ]  # fmt: skip
    return markdown_table(headers, [row.cells() for row in rows])


def number_or_dash(value: Any, digits: int) -> str:
    """A reported number, or "-" where the job reported none."""
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _headline(candidate: Mapping[str, Any]) -> float | None:
    value = (candidate.get("validation") or {}).get(HEADLINE)
    return float(value) if isinstance(value, int | float) else None


def candidates_table(row: Row) -> str | None:
    """One line per candidate the job tried: its validation scores and what it cost beside
    what the plan expected; None where the engine reported no candidates."""
    if not row.candidates:
        return None
    planned = (row.plan or {}).get("candidates") or []
    estimated = {c.get("name"): c.get("estimated_seconds") for c in planned}
    headers = [
        "candidate", "status", "val macro-F1", "validation", "seconds", "planned s", "reason",
        "description",
    ]  # fmt: skip
    lines = []
    for candidate in row.candidates:
        planned_s = estimated.get(candidate.get("name"))
        validation = candidate.get("validation") or {}
        others = ", ".join(
            f"{key} {number_or_dash(value, 4)}"
            for key, value in validation.items()
            if key != HEADLINE
        )
        lines.append([
            candidate.get("name", "?"), candidate.get("status", "?"),
            number_or_dash(validation.get(HEADLINE), 4), others or "-",
            number_or_dash(candidate.get("seconds"), 1), number_or_dash(planned_s, 1),
            candidate.get("reason", ""), candidate.get("description", ""),
        ])  # fmt: skip
    return markdown_table(headers, lines)


def candidate_tables(rows: Sequence[Row]) -> str:
    """Per dataset and service method, the candidates table (nothing for an older engine)."""
    parts = []
    for row in rows:
        table = candidates_table(row)
        if table is not None:
            parts.append(f"candidates of {row.method} on {row.data} (kept {row.kept}):\n{table}")
    return "\n\n".join(parts)


def kept_versus_probe(row: Row) -> bool | None:
    """Whether the kept candidate scores at least the linear probe on validation; None where
    the job did not report both."""
    kept = next((c for c in row.candidates if c.get("status") == "kept"), None)
    probe = next((c for c in row.candidates if c.get("name") == "linear_probe"), None)
    if kept is None or probe is None:
        return None
    kept_score, probe_score = _headline(kept), _headline(probe)
    if kept_score is None or probe_score is None:
        return None
    return kept_score >= probe_score


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def verdict(rows: Sequence[Row], goals: Mapping[str, float]) -> list[str]:
    """Per dataset: auto's test accuracy minus the CV-tuned baseline's, against that dataset's
    goal in points; auto's train time over the baseline's (features + fit), against
    MAX_TIME_RATIO; and whether the kept candidate is at least the probe on validation."""
    lines = [f"verdict: auto against {CV_BASELINE.removeprefix('baseline: ')}"]
    missed: list[str] = []
    goals_checked = probe_checked = probe_held = 0
    for data in dict.fromkeys(row.data for row in rows):
        mine = [r for r in rows if r.data == data]
        baseline = next((r for r in mine if r.method == CV_BASELINE), None)
        service = [r for r in mine if r.kept != "-"]
        if baseline is None or not service:
            continue
        others = ", ".join(
            f"{r.method} {100 * (r.accuracy - baseline.accuracy):+.1f}"
            for r in service
            if r.method != "auto"
        )
        others = f"; others: {others} pts" if others else ""
        auto = next((r for r in service if r.method == "auto"), None)
        if auto is None:
            lines.append(f"  {data}: auto not run{others}")
            continue
        gain = 100 * (auto.accuracy - baseline.accuracy)
        goal = goals.get(data, 0.0)
        ratio = auto.train_s / baseline.train_s
        goals_checked += 2
        if gain < goal:
            missed.append(f"{data} accuracy")
        if ratio > MAX_TIME_RATIO:
            missed.append(f"{data} time")
        held = kept_versus_probe(auto)
        if held is None:
            probe = "kept vs probe on validation: not reported"
        else:
            probe_checked += 1
            probe_held += held
            probe = f"kept {'>=' if held else '<'} probe on validation"
        lines.append(
            f"  {data}: {gain:+.1f} pts (goal >= {goal:+g}: {_met(gain >= goal)}); "
            f"{ratio:.1f}x its train time (goal <= {MAX_TIME_RATIO:g}: "
            f"{_met(ratio <= MAX_TIME_RATIO)}); kept {auto.kept}, {probe}{others}"
        )
    if goals_checked:
        summary = f"goals met: {goals_checked - len(missed)} of {goals_checked}"
        if missed:
            summary += f" (NOT met: {', '.join(missed)})"
        if probe_checked:
            summary += f"; kept >= probe on validation: {probe_held} of {probe_checked}"
        lines.append(summary)
    return lines
