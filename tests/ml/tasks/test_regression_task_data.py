"""Regression's data section: numbers from cells, target columns, and the audit's statistics
checked against numpy and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.tasks import get_task
from ml.tasks.regression.audit import MAX_OUTLIERS_LISTED, histogram_bins

TASK = get_task("text_regression")


def _options(target_column: str = "target", **more: object) -> IngestOptions:
    return IngestOptions(
        task="text_regression",
        filename="t.csv",
        target_column=target_column,
        **more,  # type: ignore[arg-type]
    )


def _kept(*columns: list[float], names: tuple[str, ...] = ("y",)) -> list[Candidate]:
    return [
        Candidate(source=f"line {i + 2}", target=tuple(row), key=str(i), columns=names)
        for i, row in enumerate(zip(*columns, strict=True))
    ]


@pytest.mark.parametrize(
    ("cell", "value"),
    [("1.5", 1.5), ("-2", -2.0), ("3e4", 30000.0), (" 4 ", 4.0), (".5", 0.5), ("+7.", 7.0)],
)
def test_number_cells(cell: str, value: float) -> None:
    assert TASK.parse_target([cell], _options()) == (value,)


@pytest.mark.parametrize(("value", "number"), [(2, 2.0), (2.5, 2.5), (-1e3, -1000.0)])
def test_json_numbers(value: object, number: float) -> None:
    assert TASK.parse_target([value], _options()) == (number,)


@pytest.mark.parametrize(
    ("value", "reason", "hint"),
    [
        ("", "missing_target", "empty"),
        (None, "missing_target", "no value"),
        ("nan", "missing_target", "no value"),
        ("N/A", "missing_target", "no value"),
        (math.nan, "missing_target", "NaN"),
        ("inf", "invalid_target", "finite"),
        ("-Infinity", "invalid_target", "finite"),
        (math.inf, "invalid_target", "finite"),
        ("1e400", "invalid_target", "finite"),
        (10**400, "invalid_target", "finite"),
        ("2e16", "invalid_target", "rescale"),
        ("cheap", "invalid_target", "not a number"),
        ("1_000", "invalid_target", "not a number"),
        ("\u0661\u0662", "invalid_target", "not a number"),  # Arabic-Indic digits
        ("3,5", "invalid_target", "dot"),
        ("1,000", "invalid_target", "thousands"),
        (True, "invalid_target", "true"),
        ([1.0], "invalid_target", "not a number"),
    ],
)
def test_unusable_targets_say_why(value: object, reason: str, hint: str) -> None:
    with pytest.raises(SkipExampleError) as caught:
        TASK.parse_target([value], _options("price"))
    assert caught.value.reason == reason
    assert "column 'price'" in caught.value.detail and hint in caught.value.detail


def test_several_target_columns_are_one_number_each() -> None:
    options = _options(" price , rent")
    assert TASK.columns(options) == ("price", "rent")
    assert TASK.parse_target(["1.5", 700], options) == (1.5, 700.0)
    with pytest.raises(SkipExampleError) as caught:
        TASK.parse_target(["1.5", "x"], options)
    assert "column 'rent'" in caught.value.detail


@pytest.mark.parametrize(
    ("target_column", "more", "field"),
    [
        ("a,,b", {}, "target_column"),
        ("a,a", {}, "target_column"),
        (",".join(f"c{i}" for i in range(33)), {}, "target_column"),
        ("x" * 201, {}, "target_column"),
        ("target", {"multilabel": True}, "multilabel"),
    ],
)
def test_unusable_options_are_refused_naming_the_field(
    target_column: str, more: dict[str, object], field: str
) -> None:
    with pytest.raises(IngestError) as caught:
        TASK.columns(_options(target_column, **more))
    assert (caught.value.status, caught.value.field) == (422, field)


def test_a_file_listed_twice_must_agree() -> None:
    assert TASK.merge_targets((1.0,), (1.0,), _options()) == (1.0,)
    with pytest.raises(SkipExampleError) as caught:
        TASK.merge_targets((1.0,), (2.0,), _options())
    assert caught.value.reason == "invalid_target" and "1" in caught.value.detail


def test_statistics_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(0)
    price = rng.lognormal(3, 0.5, 500)
    rent = rng.normal(0, 2, 500)
    section, _ = TASK.audit(
        _kept(list(price), list(rent), names=("price", "rent")), SkipLog(), IngestLimits()
    )
    assert section["targets"] == ["price", "rent"]
    for name, values in (("price", price), ("rent", rent)):
        got = section["target_stats"][name]
        assert got["count"] == 500 and got["distinct"] == 500
        assert got["min"] == values.min() and got["max"] == values.max()
        assert got["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert got["std"] == pytest.approx(values.std(), rel=1e-12)
        assert got["median"] == pytest.approx(np.median(values))
        counts, edges = np.histogram(values, bins=histogram_bins(500))
        assert got["histogram"] == {"edges": pytest.approx(list(edges)), "counts": list(counts)}
        assert sum(got["histogram"]["counts"]) == 500
        z = np.abs(values - np.median(values)) / scipy_stats.median_abs_deviation(
            values, scale="normal"
        )
        assert got["outliers"]["count"] == int((z > 5).sum())
    assert histogram_bins(500) == 10  # Sturges: ceil(log2 500) + 1


def test_outliers_are_listed_farthest_first_bounded_and_counted() -> None:
    rng = np.random.default_rng(1)
    values = list(rng.normal(100, 1, 300)) + [1e6 + i for i in range(30)]
    section, warnings = TASK.audit(_kept(values), SkipLog(), IngestLimits())
    found = section["target_stats"]["y"]["outliers"]
    assert found["count"] == 30 and found["threshold"] == 5.0
    assert len(found["listed"]) == MAX_OUTLIERS_LISTED
    scale = scipy_stats.median_abs_deviation(values, scale="normal")
    farthest = found["listed"][0]
    assert (farthest["source"], farthest["value"]) == ("line 331", 1e6 + 29)
    # 1.4826 (the constant the report uses) is scipy's normal scale to 6 digits
    assert farthest["robust_z"] == pytest.approx(
        abs(1e6 + 29 - np.median(values)) / scale, rel=1e-5
    )
    assert [o["value"] for o in found["listed"]] == sorted(
        (o["value"] for o in found["listed"]), reverse=True
    )
    (warning,) = [w for w in warnings if w["code"] == "target_outliers"]
    assert "30 of 330" in warning["message"] and "line 331" in warning["message"]


def test_clean_targets_have_no_warnings() -> None:
    values = list(np.random.default_rng(2).normal(10, 3, 200))
    assert TASK.audit(_kept(values), SkipLog(), IngestLimits())[1] == []


def test_few_values_and_a_nearly_constant_target_are_warned_about() -> None:
    _, warnings = TASK.audit(_kept([0.0, 1.0] * 20), SkipLog(), IngestLimits())
    assert [w["code"] for w in warnings] == ["few_target_values"]
    assert "text_classification" in warnings[0]["message"]
    drift = [1e9 + i * 1e-3 for i in range(50)]
    _, warnings = TASK.audit(_kept(drift), SkipLog(), IngestLimits())
    assert [w["code"] for w in warnings] == ["nearly_constant_target"]


def test_skipped_targets_are_warned_about_with_an_example() -> None:
    skips = SkipLog()
    skips.add("line 9", "invalid_target", "column 'y' is 'abc', not a number like 3.5")
    skips.add("line 10", "missing_target", "column 'y' is empty")
    _, warnings = TASK.audit(_kept([1.0, 2.0, 3.0, 4.0]), skips, IngestLimits())
    (warning,) = warnings
    assert warning["code"] == "skipped_targets" and "line 9" in warning["message"]


def test_a_constant_target_is_refused_naming_it() -> None:
    with pytest.raises(IngestError) as caught:
        TASK.audit(
            _kept([1.0, 2.0, 3.0], [5.0, 5.0, 5.0], names=("a", "b")), SkipLog(), IngestLimits()
        )
    error = caught.value
    assert (error.code, error.status) == ("constant_target", 422)
    assert "'b'" in error.message and "5" in error.message
    assert error.report is not None and error.report["target_stats"]["b"]["std"] == 0.0


def test_one_usable_example_is_not_enough() -> None:
    skips = SkipLog()
    skips.add("line 3", "missing_target", "column 'y' is empty")
    with pytest.raises(IngestError) as caught:
        TASK.audit(_kept([1.0]), skips, IngestLimits())
    assert caught.value.code == "no_examples" and "Only 1 usable" in caught.value.message


def test_words_in_the_target_column_are_the_wrong_task() -> None:
    skips = SkipLog()
    for i in range(20):
        skips.add(f"line {i + 2}", "invalid_target", "column 'y' is 'positive', not a number")
    with pytest.raises(IngestError) as caught:
        TASK.audit([], skips, IngestLimits())
    error = caught.value
    assert (error.code, error.status, error.field) == ("wrong_task", 422, "task")
    assert "text_classification" in error.message and "line 2" in error.message


def test_manifest_fields_round_trip() -> None:
    options = _options("price,rent")
    assert TASK.manifest_header([], options) == {"multilabel": False, "targets": ["price", "rent"]}
    row = TASK.row_target((1.5, 2.0))
    assert row == {"target": [1.5, 2.0]}
    assert TASK.read_target(row) == (1.5, 2.0)
    for bad in ({"target": []}, {"target": [True]}, {"target": ["1"]}, {"labels": ["a"]}):
        with pytest.raises(ValueError):
            TASK.read_target(bad)
    with pytest.raises(ValueError):
        TASK.read_target({"target": [math.nan]})
