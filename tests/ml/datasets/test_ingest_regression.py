"""ingest for the regression tasks: image zips with a labels.csv of numbers, text CSV and
JSONL, several targets, unusable targets, and uploads meant for the other family."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from ml.datasets.errors import IngestError
from ml.datasets.store import load_dataset
from tests.factories.uploads import write_zip

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store


def _png(grey: int, size: int = 40) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size + grey % 7), (grey, grey, grey)).save(buffer, format="PNG")
    return buffer.getvalue()


def _brightness_zip(path: Path, n: int = 30) -> dict[str, tuple[float, float]]:
    """Grey squares whose brightness and height are the targets; returns {file: targets}."""
    targets = {f"img/{i:03}.png": (round(i * 255 / n, 3), float(40 + i % 7)) for i in range(n)}
    rows = ["filename,brightness,height"]
    rows += [f"{name},{b},{h}" for name, (b, h) in targets.items()]
    entries = {name: _png(int(b)) for name, (b, _) in targets.items()}
    write_zip(path, {"labels.csv": "\n".join(rows).encode(), **entries})
    return targets


def _ratings(n: int, seed: int = 0) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    words = ["good", "bad", "fine", "great", "awful", "plain", "nice", "poor"]
    return [
        (" ".join(rng.choice(words) for _ in range(6)) + f" {i}", round(rng.uniform(1, 5), 2))
        for i in range(n)
    ]


def test_image_regression_zip_with_several_targets(tmp_path: Path, store: Store) -> None:
    targets = _brightness_zip(tmp_path / "grey.zip")
    result = store.ingest(
        tmp_path / "grey.zip", "image_regression", target_column="brightness,height"
    )
    manifest = result.manifest
    assert manifest["task"] == "image_regression" and manifest["multilabel"] is False
    assert manifest["targets"] == ["brightness", "height"] and "labels" not in manifest
    assert {row["source"]: tuple(row["target"]) for row in manifest["examples"]} == targets
    report = result.report
    assert report["targets"] == ["brightness", "height"] and report["num_examples"] == 30
    assert "label_counts" not in report and "num_labels" not in report
    brightness = np.array([b for b, _ in targets.values()])
    stats = report["target_stats"]["brightness"]
    assert stats["mean"] == pytest.approx(brightness.mean())
    assert stats["std"] == pytest.approx(brightness.std())
    assert (stats["min"], stats["max"]) == (brightness.min(), brightness.max())
    assert report["target_stats"]["height"]["distinct"] == 7
    loaded = load_dataset(result.path)
    assert loaded.labels == ("brightness", "height") and loaded.task == "image_regression"
    by_source = {e.source: e for e in loaded.examples}
    assert by_source["img/003.png"].target == targets["img/003.png"]
    assert by_source["img/003.png"].file is not None and by_source["img/003.png"].file.is_file()


def test_text_regression_csv_and_jsonl_read_the_same_rows(tmp_path: Path, store: Store) -> None:
    rows = _ratings(60)
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("review,stars\n" + "".join(f"{t},{v}\n" for t, v in rows), encoding="utf-8")
    jsonl_path = tmp_path / "r.jsonl"
    jsonl_path.write_text("".join(json.dumps({"review": t, "stars": v}) + "\n" for t, v in rows))
    options = {"text_column": "review", "target_column": "stars"}
    from_csv = store.ingest(csv_path, "text_regression", **options)
    from_jsonl = store.ingest(jsonl_path, "text_regression", **options)
    assert [(e["text"], e["target"]) for e in from_csv.manifest["examples"]] == [
        (t, [v]) for t, v in rows
    ]
    assert [(e["text"], e["target"]) for e in from_jsonl.manifest["examples"]] == [
        (t, [v]) for t, v in rows
    ]
    stats = from_csv.report["target_stats"]["stars"]
    assert stats["mean"] == pytest.approx(np.mean([v for _, v in rows]))
    assert from_csv.report["warnings"] == []
    loaded = load_dataset(from_csv.path)
    assert loaded.labels == ("stars",)
    assert [e.target for e in loaded.examples] == [(v,) for _, v in rows]


def test_unusable_targets_are_skipped_and_reported(tmp_path: Path, store: Store) -> None:
    good = "".join(f"row number {i},{i * 1.5}\n" for i in range(20))
    bad = 'empty one,\nnot a number,cheap\ninfinite,inf\nmissing,nan\ncomma,"3,5"\n'
    upload = tmp_path / "t.csv"
    upload.write_text("text,target\n" + good + bad)
    result = store.ingest(upload, "text_regression")
    assert result.report["num_examples"] == 20
    assert store.skipped(result) == {
        "line 22": "missing_target",
        "line 23": "invalid_target",
        "line 24": "invalid_target",
        "line 25": "missing_target",
        "line 26": "invalid_target",
    }
    assert result.report["skipped_counts"] == {"invalid_target": 3, "missing_target": 2}
    details = {s["source"]: s["detail"] for s in result.report["skipped"]}
    assert "'cheap'" in details["line 23"] and "dot" in details["line 26"]
    codes = [w["code"] for w in result.report["warnings"]]
    assert "skipped_targets" in codes and "many_skipped" in codes


def test_jsonl_non_finite_and_boolean_targets_are_skipped(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "t.jsonl"
    lines = [json.dumps({"text": f"text {i}", "target": i}) for i in range(10)]
    lines += ['{"text": "a", "target": NaN}', '{"text": "b", "target": Infinity}']
    lines += ['{"text": "c", "target": true}', '{"text": "d", "target": null}']
    upload.write_text("\n".join(lines) + "\n")
    result = store.ingest(upload, "text_regression")
    assert result.report["num_examples"] == 10
    assert store.skipped(result) == {
        "line 11": "missing_target",
        "line 12": "invalid_target",
        "line 13": "invalid_target",
        "line 14": "missing_target",
    }
    json.dumps(result.report, allow_nan=False)  # the report itself has only finite numbers


def test_same_text_with_different_numbers_is_a_conflicting_duplicate(
    tmp_path: Path, store: Store
) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,target\nsame text,1\nSame  text,2\nsame text,1\nother,3\nmore,4\n")
    report = store.ingest(upload, "text_regression").report
    assert report["duplicate_counts"] == {"exact_groups": 1, "removed": 1, "conflicting_groups": 1}
    assert report["exact_duplicates"] == [
        {"sources": ["line 2", "line 4"], "target": [1.0], "count": 2}
    ]
    assert report["conflicting_duplicates"] == [
        {
            "sources": ["line 2", "line 3"],
            "target_by_source": {"line 2": [1.0], "line 3": [2.0]},
            "count": 2,
        }
    ]
    (warning,) = [w for w in report["warnings"] if w["code"] == "conflicting_duplicates"]
    assert "different targets" in warning["message"]


def test_labels_csv_listing_a_file_twice_with_other_numbers(tmp_path: Path, store: Store) -> None:
    labels = "filename,target\na.png,1.5\nb.png,2.5\na.png,1.5\na.png,9\nc.png,3\n"
    upload = write_zip(
        tmp_path / "a.zip",
        {"labels.csv": labels.encode(), "a.png": _png(10), "b.png": _png(90), "c.png": _png(200)},
    )
    result = store.ingest(upload, "image_regression")
    assert store.skipped(result) == {"labels.csv line 5": "invalid_target"}
    assert {e["source"]: e["target"] for e in result.manifest["examples"]} == {
        "a.png": [1.5],
        "b.png": [2.5],
        "c.png": [3.0],
    }


def test_images_missing_from_labels_csv_have_no_target(tmp_path: Path, store: Store) -> None:
    labels = "filename,target\na.png,1\nb.png,2\n"
    upload = write_zip(
        tmp_path / "a.zip",
        {"labels.csv": labels.encode(), "a.png": _png(1), "b.png": _png(2), "c.png": _png(3)},
    )
    result = store.ingest(upload, "image_regression")
    assert store.skipped(result) == {"c.png": "missing_target"}


def test_all_targets_unusable_is_refused_with_the_report(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,target\none,\ntwo,nan\nthree, \n")
    error = store.fails(upload, "text_regression")
    assert (error.code, error.status) == ("no_examples", 422)
    assert "missing_target: 3" in error.message
    assert error.report is not None and error.report["skipped_counts"] == {"missing_target": 3}


def test_a_constant_target_is_refused(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,target\none,4\ntwo,4\nthree,4.0\n")
    error = store.fails(upload, "text_regression")
    assert (error.code, error.status) == ("constant_target", 422)
    assert error.report is not None and error.report["num_examples"] == 3


def test_text_labels_given_to_regression_name_the_classification_task(
    tmp_path: Path, store: Store
) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    error = store.fails(upload, "text_regression", target_column="label")
    assert (error.code, error.status, error.field) == ("wrong_task", 422, "task")
    assert "text_classification" in error.message
    assert error.report is not None and error.report["skipped_counts"] == {"invalid_target": 20}


def test_measurements_given_to_classification_name_the_regression_task(
    tmp_path: Path, store: Store
) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,price\n" + "".join(f"item {t},{v}\n" for t, v in _ratings(80)))
    error = store.fails(upload, "text_classification", label_column="price")
    assert (error.code, error.status) == ("wrong_task", 422)
    assert "text_regression" in error.message and "target_column=price" in error.message


def test_a_folder_per_label_zip_given_to_image_regression(tmp_path: Path, store: Store) -> None:
    upload = write_zip(tmp_path / "a.zip", {"cat/1.png": _png(1), "dog/2.png": _png(2)})
    error = store.fails(upload, "image_regression")
    assert (error.code, error.status) == ("wrong_task", 422)
    assert "image_classification" in error.message


def test_image_regression_with_several_targets_needs_labels_csv(
    tmp_path: Path, store: Store
) -> None:
    upload = write_zip(tmp_path / "a.zip", {"1.5/1.png": _png(1), "2.5/2.png": _png(2)})
    error = store.fails(upload, "image_regression", target_column="a,b")
    assert error.code == "missing_labels" and "'filename,a,b'" in error.message


def test_a_missing_target_column_names_the_field(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,price\none,1\ntwo,2\n")
    error = store.fails(upload, "text_regression", target_column="price,rent")
    assert (error.code, error.field) == ("missing_column", "target_column")
    assert "'rent'" in error.message and "target_column" in error.message


def test_multilabel_regression_is_refused(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "t.csv"
    upload.write_text("text,target\none,1\ntwo,2\n")
    with pytest.raises(IngestError) as caught:
        store.ingest(upload, "text_regression", multilabel=True)
    assert (caught.value.status, caught.value.field) == (422, "multilabel")
