"""audit and deduplicate on hand-built candidates: report shape, bounds and warnings."""

import json
from typing import Any

from ml.datasets import audit as auditing
from ml.datasets.audit import MAX_SOURCES
from ml.datasets.duplicates import deduplicate
from ml.datasets.options import IngestLimits
from ml.datasets.records import Candidate, SkipLog
from ml.tasks import get_task


def _text(source: str, key: str, *labels: str) -> Candidate:
    return Candidate(source=source, target=tuple(sorted(labels)), key=key, text=key)


def audit(
    items: list[Candidate], skips: SkipLog, limits: IngestLimits
) -> tuple[list[Candidate], dict[str, Any]]:
    return auditing.audit(get_task("text_classification"), items, skips, limits)


def test_deduplicate_keeps_the_first_of_each_content_and_labelling_in_order() -> None:
    items = [
        _text("1", "k1", "a"),
        _text("2", "k2", "b"),
        _text("3", "k1", "a"),
        _text("4", "k1", "b"),
        _text("5", "k1", "a", "b"),
    ]
    found = deduplicate(items)
    assert [c.source for c in found.kept] == ["1", "2", "4", "5"]
    assert [[c.source for c in g] for g in found.exact] == [["1", "3"]]
    assert [[c.source for c in g] for g in found.conflicting] == [["1", "4", "5"]]
    assert found.removed == 1


def test_report_is_json_and_duplicate_sources_are_bounded() -> None:
    copies = [_text(f"line {i}", "same", "a") for i in range(100)]
    skips = SkipLog()
    skips.add("line 500", "empty_text", "the text is empty")
    kept, report = audit([*copies, _text("x", "other", "b")], skips, IngestLimits())
    assert len(kept) == 2
    assert json.loads(json.dumps(report)) == report
    (group,) = report["exact_duplicates"]
    assert len(group["sources"]) == MAX_SOURCES and group["count"] == 100
    assert report["duplicate_counts"] == {"exact_groups": 1, "removed": 99, "conflicting_groups": 0}
    assert report["labels_too_small"] == [
        {"label": "a", "count": 1, "minimum": 2},
        {"label": "b", "count": 1, "minimum": 2},
    ]
    assert report["skipped_counts"] == {"empty_text": 1}


def test_multilabel_counts_every_label_of_an_example() -> None:
    items = [_text("1", "k1", "a", "b"), _text("2", "k2", "b"), _text("3", "k3", "a", "b")]
    _, report = audit(items, SkipLog(), IngestLimits())
    assert report["label_counts"] == {"a": 2, "b": 3}
    assert report["num_examples"] == 3 and report["imbalance_ratio"] == 1.5


def test_balanced_clean_data_has_no_warnings() -> None:
    items = [_text(str(i), f"some words here {i}", "ab"[i % 2]) for i in range(10)]
    assert audit(items, SkipLog(), IngestLimits())[1]["warnings"] == []


def test_few_skips_are_listed_but_not_warned_about() -> None:
    items = [_text(str(i), f"some words here {i}", "ab"[i % 2]) for i in range(20)]
    skips = SkipLog()
    skips.add("line 99", "corrupt", "not valid JSON")
    assert audit(items, skips, IngestLimits())[1]["warnings"] == []
    for i in range(2):
        skips.add(f"line {100 + i}", "corrupt", "not valid JSON")
    (warning,) = audit(items, skips, IngestLimits())[1]["warnings"]
    assert warning["code"] == "many_skipped" and "3 of 23" in warning["message"]
