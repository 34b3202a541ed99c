"""The pieces of human output and parsing, without a server: what a person reads must be
exact (bars in proportion, the matrix in place, user text never read as markup)."""

from __future__ import annotations

import io

import pytest
from rich.console import RenderableType

from hone.cli import render
from hone.cli.common import UsageError, split_ref
from hone.cli.jobs import parse_value
from hone.cli.output import Output
from hone.cli.predict import batches, read_jsonl


def shown(*parts: RenderableType) -> str:
    stream = io.StringIO()
    out = Output(json_mode=False, stdout=stream)
    out.show(*parts)
    return stream.getvalue()


def test_bars_are_in_proportion_and_user_labels_are_not_markup() -> None:
    text = shown(render.bar_chart("Examples per label", {"[red]cat": 40, "dog": 10}))
    lines = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert lines["[red]cat"].count("█") == render.BAR_WIDTH
    assert lines["dog"].count("█") == render.BAR_WIDTH // 4
    assert "\x1b" not in text  # not a terminal: no colour, whatever the styles
    assert render.bar(0.5, 4, ascii_only=True) == "##"


def test_the_confusion_matrix_has_true_labels_as_rows() -> None:
    text = shown(render.confusion_matrix(["cat", "dog"], [[5, 1], [0, 7]]))
    assert "rows: true label, columns: predicted" in text
    assert any(line.split() == ["cat", "5", "1"] for line in text.splitlines())
    assert any(line.split() == ["dog", "0", "7"] for line in text.splitlines())
    many = [str(i) for i in range(render.MAX_MATRIX_LABELS + 1)]
    assert "too many to show" in shown(render.confusion_matrix(many, [[0] * len(many)] * len(many)))


def test_references_values_and_batches_parse_as_a_user_means_them() -> None:
    assert split_ref("digits") == ("digits", None)
    assert split_ref("digits@3") == ("digits", 3)
    assert split_ref("digits@production") == ("digits", "production")
    with pytest.raises(UsageError):
        split_ref("digits@")
    assert [parse_value(v) for v in ("3", "0.5", "true", "auto", "cosine")] == [
        3, 0.5, True, "auto", "cosine",
    ]  # fmt: skip
    assert [len(b) for b in batches(list(range(70)))] == [32, 32, 6]
    texts, images = read_jsonl(['{"text": "hi"}', "", '{"image_path": "a.png"}'])
    assert texts == ["hi"] and [str(p) for p in images] == ["a.png"]
    with pytest.raises(UsageError, match="line 1"):
        read_jsonl(["not json"])
    assert render.number(0.95) == "0.950" and render.number(3) == "3"
    assert render.duration(3725) == "1:02:05" and render.duration(65) == "1:05"
