"""The dataset page: the audit as pictures, with the examples it is about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.datasets.schemas import DatasetRead
from app.ui import charts
from app.ui.examples import Examples, snippet

PREVIEW_PER_LABEL = 6
MAX_PREVIEW_LABELS = 24
MAX_LISTED = 50  # duplicate groups and skipped files shown; the counts say how many in all

# What a person does about each of the audit's warnings (the message says what was found).
TODO = {
    "imbalanced_labels": "Collect more examples of the rare labels, or merge or drop them. "
    "Training already weighs labels by their inverse frequency; check the rare labels' recall "
    "on the trained version's page.",
    "labels_too_small": "Add examples to these labels, or remove their folders or rows, and "
    "upload again.",
    "conflicting_duplicates": "Look at the items below, decide which label is right, fix the "
    "upload and upload it again.",
    "exact_duplicates": "Nothing to do now: only the first copy is kept. Remove the copies at "
    "the source so the next upload is clean.",
    "many_skipped": "See the skipped files below for why; fix or convert them and upload again "
    "to use them.",
    "short_texts": "Check that text_column names the column that holds the text.",
    "tiny_images": "Use larger originals if you have them.",
}


@dataclass(frozen=True)
class Item:
    """One example as the page shows it: a thumbnail or a snippet, and its labels."""

    source: str
    labels: str
    index: int | None  # in the stored dataset; None when it is not there (a removed copy)
    text: str | None


def _labels(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _item(examples: Examples | None, source: str, labels: Any = None) -> Item:
    index = examples.index_of.get(source) if examples else None
    example = examples.get(index) if examples and index is not None else None
    if example is not None and labels is None:
        labels = list(example.target)
    text = snippet(example.text) if example is not None and example.text is not None else None
    return Item(source, _labels(labels), index, text)


def _preview(examples: Examples | None, labels: Sequence[str]) -> list[dict[str, Any]]:
    if examples is None:
        return []
    by_label: dict[str, list[Item]] = {label: [] for label in labels[:MAX_PREVIEW_LABELS]}
    for index, example in enumerate(examples.dataset.examples):
        for label in example.target:
            group = by_label.get(str(label))
            if group is not None and len(group) < PREVIEW_PER_LABEL:
                text = snippet(example.text) if example.text is not None else None
                group.append(Item(example.source, _labels(example.target), index, text))
        if all(len(g) >= PREVIEW_PER_LABEL for g in by_label.values()):
            break
    return [{"label": label, "items": items} for label, items in by_label.items()]


def _regression_preview(examples: Examples | None) -> list[Item]:
    if examples is None:
        return []
    shown = examples.dataset.examples[: PREVIEW_PER_LABEL * 2]
    return [
        Item(
            e.source,
            ", ".join(f"{v:.4g}" for v in e.target),
            i,
            snippet(e.text) if e.text is not None else None,
        )
        for i, e in enumerate(shown)
    ]


def build(ds: DatasetRead, examples: Examples | None) -> dict[str, Any]:
    report = ds.report or {}
    regression = ds.targets is not None
    counts = report.get("label_counts") or ds.label_counts
    too_small = report.get("labels_too_small") or []
    minimum = too_small[0].get("minimum") if too_small else None
    conflicts = [
        {
            "count": group.get("count", len(group.get("sources", []))),
            "items": [
                _item(examples, source, labels)
                for source, labels in (
                    group.get("labels_by_source") or group.get("target_by_source") or {}
                ).items()
            ],
        }
        for group in report.get("conflicting_duplicates", [])[:MAX_LISTED]
    ]
    exact = [
        {
            "count": group.get("count", 0),
            "first": _item(examples, group["sources"][0]) if group.get("sources") else None,
            "sources": group.get("sources", []),
            "labels": _labels(group.get("labels", group.get("target"))),
        }
        for group in report.get("exact_duplicates", [])[:MAX_LISTED]
    ]
    targets = [
        {
            "name": name,
            "stats": stats,
            "chart": charts.histogram(stats["histogram"]["edges"], stats["histogram"]["counts"])
            if stats.get("histogram")
            else None,
        }
        for name, stats in (report.get("target_stats") or {}).items()
    ]
    return {
        "ds": ds,
        "report": report,
        "regression": regression,
        "modality": "image" if ds.task.startswith("image") else "text",
        "chart": charts.label_bars(counts, minimum) if counts else None,
        "imbalance": report.get("imbalance_ratio"),
        "too_small": too_small,
        "warnings": [
            {**w, "todo": TODO.get(str(w.get("code")), "")} for w in report.get("warnings", [])
        ],
        "skipped": report.get("skipped", [])[:MAX_LISTED],
        "skipped_counts": report.get("skipped_counts", {}),
        "skipped_total": sum((report.get("skipped_counts") or {}).values()),
        "conflicts": conflicts,
        "exact": exact,
        "duplicate_counts": report.get("duplicate_counts", {}),
        "targets": targets,
        "preview": [] if regression else _preview(examples, ds.labels),
        "regression_preview": _regression_preview(examples) if regression else [],
        "has_examples": examples is not None,
    }
