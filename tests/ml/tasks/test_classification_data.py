"""Classification's data section: label cells, labels.csv merging, the label audit and the
refusal of a file whose labels are measurements."""

import random

import pytest

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.tasks import get_task

TASK = get_task("text_classification")
SINGLE = IngestOptions(task="text_classification", filename="t.csv")
MULTI = IngestOptions(task="text_classification", filename="t.csv", multilabel=True)


def _parse(value: object, multilabel: bool) -> tuple[str, ...]:
    return TASK.parse_target([value], MULTI if multilabel else SINGLE)


def _kept(labels: list[str], column: str = "label") -> list[Candidate]:
    return [
        Candidate(source=f"line {i + 2}", target=(label,), key=str(i), columns=(column,))
        for i, label in enumerate(labels)
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["b", "a"]', ("a", "b")),
        ("b|a| c ", ("a", "b", "c")),
        (["b", "a", "b"], ("a", "b")),
        ("solo", ("solo",)),
        ([1, "x"], ("1", "x")),
        ("a||b", ("a", "b")),
    ],
)
def test_multilabel_syntaxes(value: object, expected: tuple[str, ...]) -> None:
    assert _parse(value, multilabel=True) == expected


def test_single_label_keeps_pipes_and_brackets_as_text() -> None:
    assert _parse(" a|b ", multilabel=False) == ("a|b",)
    assert _parse('["a"]', multilabel=False) == ('["a"]',)
    assert _parse(3, multilabel=False) == ("3",)


def test_decomposed_and_composed_unicode_are_one_label() -> None:
    assert _parse("cafe\u0301", False) == _parse("caf\u00e9", False)


@pytest.mark.parametrize(
    ("value", "multilabel", "reason"),
    [
        (["a", "b"], False, "invalid_label"),
        (None, False, "missing_label"),
        ("  ", False, "missing_label"),
        ("[]", True, "missing_label"),
        ("|", True, "missing_label"),
        ("[not json", True, "invalid_label"),
        (True, False, "invalid_label"),
        (1.5, False, "invalid_label"),
        ([["nested"]], True, "invalid_label"),
        ("x" * 201, False, "invalid_label"),
        ("\ud800", False, "invalid_label"),
    ],
)
def test_unusable_labels_are_skipped_with_a_reason(
    value: object, multilabel: bool, reason: str
) -> None:
    with pytest.raises(SkipExampleError) as caught:
        _parse(value, multilabel)
    assert caught.value.reason == reason


def test_labels_csv_rows_of_one_file_merge_only_in_multilabel_mode() -> None:
    assert TASK.merge_targets(("cat",), ("outdoor",), MULTI) == ("cat", "outdoor")
    assert TASK.merge_targets(("cat",), ("cat",), SINGLE) == ("cat",)
    with pytest.raises(SkipExampleError) as caught:
        TASK.merge_targets(("cat",), ("dog",), SINGLE)
    assert caught.value.reason == "invalid_label" and "multilabel=true" in caught.value.detail


def test_the_audit_section_counts_labels_and_flags_small_and_imbalanced_ones() -> None:
    section, warnings = TASK.audit(_kept(["a"] * 8 + ["b"] * 2 + ["c"]), SkipLog(), IngestLimits())
    assert section == {
        "num_labels": 3,
        "label_counts": {"a": 8, "b": 2, "c": 1},
        "imbalance_ratio": 8.0,
        "labels_too_small": [{"label": "c", "count": 1, "minimum": 2}],
    }
    assert [w["code"] for w in warnings] == ["imbalanced_labels", "labels_too_small"]


def test_one_label_is_refused_with_its_report() -> None:
    with pytest.raises(IngestError) as caught:
        TASK.audit(_kept(["a", "a"]), SkipLog(), IngestLimits())
    assert caught.value.code == "single_label" and "'a'" in caught.value.message
    assert caught.value.report is not None
    assert caught.value.report["label_counts"] == {"a": 2}


def test_measurements_in_the_label_column_are_the_wrong_task() -> None:
    rng = random.Random(0)
    prices = [f"{rng.uniform(10, 500):.2f}" for _ in range(200)]
    with pytest.raises(IngestError) as caught:
        TASK.audit(_kept(prices, column="price"), SkipLog(), IngestLimits())
    error = caught.value
    assert (error.code, error.status, error.field) == ("wrong_task", 422, "task")
    assert "text_regression" in error.message and "target_column=price" in error.message
    assert error.report is not None and error.report["num_labels"] == len(set(prices))


@pytest.mark.parametrize(
    "labels",
    [
        ["0", "1"] * 50,  # binary class ids
        [str(1 + i % 5) for i in range(200)],  # 1-5 stars
        [f"{1 + (i % 9) / 2:.1f}" for i in range(200)],  # half stars: 9 values
        [str(i) for i in range(300)],  # many integer class ids
        [f"v{i}.5" for i in range(100)],  # words that contain numbers
    ],
    ids=["binary", "stars", "half-stars", "integer-ids", "codes"],
)
def test_integer_and_few_valued_labels_stay_classification(labels: list[str]) -> None:
    section, _ = TASK.audit(_kept(labels), SkipLog(), IngestLimits(min_examples_per_label=1))
    assert section["num_labels"] == len(set(labels))


def test_manifest_fields_round_trip() -> None:
    kept = [
        Candidate(source="1", target=("b", "a"), key="1"),
        Candidate(source="2", target=("c",), key="2"),
    ]
    assert TASK.manifest_header(kept, MULTI) == {"multilabel": True, "labels": ["a", "b", "c"]}
    row = TASK.row_target(("a", "b"))
    assert row == {"labels": ["a", "b"]}
    assert TASK.read_target(row) == ("a", "b")
    with pytest.raises(ValueError):
        TASK.read_target({"labels": []})
    with pytest.raises(ValueError):
        TASK.read_target({"target": [1.0]})
