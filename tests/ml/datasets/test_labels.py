"""parse_labels: the multilabel syntaxes, and what single-label mode refuses."""

import pytest

from ml.datasets.labels import parse_labels
from ml.datasets.records import SkipExampleError


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
    assert parse_labels(value, multilabel=True) == expected


def test_single_label_keeps_pipes_and_brackets_as_text() -> None:
    assert parse_labels(" a|b ", multilabel=False) == ("a|b",)
    assert parse_labels('["a"]', multilabel=False) == ('["a"]',)
    assert parse_labels(3, multilabel=False) == ("3",)


def test_decomposed_and_composed_unicode_are_one_label() -> None:
    assert parse_labels("cafe\u0301", False) == parse_labels("caf\u00e9", False)


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
        parse_labels(value, multilabel)
    assert caught.value.reason == reason
