"""Uploads that used to be read wrongly or refused without saying why: old-Mac line endings,
zips with two entries of one name, and refusals that now carry the report of what was read."""

from __future__ import annotations

import csv
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.preflight import preflight
from tests.factories.uploads import image_bytes, tweets

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store

TEXT: Final = "text_classification"
IMAGES: Final = "image_classification"


def _csv_text(rows: list[tuple[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    return buf.getvalue()


def test_old_mac_line_endings_read_every_row(tmp_path: Path, store: Store) -> None:
    rows = tweets(21)
    lf = _csv_text(rows)
    results = {}
    for name, ending in (("lf", "\n"), ("cr", "\r"), ("crlf", "\r\n")):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(lf.replace("\n", ending).encode())
        preflight(path, IngestOptions(task=TEXT, filename=path.name), IngestLimits())
        result = store.ingest(path, TEXT)
        assert result.report["skipped"] == [], (name, result.report["skipped"])
        assert result.report["num_examples"] == 21
        results[name] = [(e["text"], e["labels"]) for e in result.manifest["examples"]]
    assert results["cr"] == results["lf"] == results["crlf"]
    # JSON Lines with \r endings too.
    path = tmp_path / "cr.jsonl"
    path.write_bytes("".join(json.dumps({"text": t, "label": y}) + "\r" for t, y in rows).encode())
    assert store.ingest(path, TEXT).report["num_examples"] == 21


def test_a_quoted_cell_keeps_its_line_breaks(tmp_path: Path, store: Store) -> None:
    rows = [*tweets(6)]
    rows[0] = ("first line\r\nsecond line", rows[0][1])
    path = tmp_path / "multi.csv"
    path.write_bytes(_csv_text(rows).encode())
    texts = [e["text"] for e in store.ingest(path, TEXT).manifest["examples"]]
    assert "first line\r\nsecond line" in texts


def test_two_zip_entries_of_one_name_are_one_example_and_reported(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        for i in range(3):
            archive.writestr(f"cat/{i}.png", image_bytes(seed=i))
            archive.writestr(f"dog/{i}.png", image_bytes(seed=10 + i))
        archive.writestr("cat/0.png", image_bytes(seed=99))
    result = store.ingest(path, IMAGES)
    assert result.report["label_counts"] == {"cat": 3, "dog": 3}
    assert store.skipped(result) == {"cat/0.png": "duplicate_name"}


def test_a_refusal_carries_the_report_of_what_was_dropped(tmp_path: Path, store: Store) -> None:
    """Rows with a 10,000-character label were dropped silently, then the upload was refused
    as "single label" with no report: the user never learned why."""
    rows = tweets(12)
    rows = [(text, "positive" if i % 2 else "x" * 10_000) for i, (text, _) in enumerate(rows)]
    path = tmp_path / "labels.csv"
    path.write_text(_csv_text(rows), encoding="utf-8")
    error = store.fails(path, TEXT)
    assert error.code == "single_label"
    assert "6 examples were skipped" in error.message and "invalid_label" in error.message
    assert error.report is not None
    assert error.report["skipped_counts"] == {"invalid_label": 6}
    assert len(error.report["skipped"]) == 6
    assert error.report["label_counts"] == {"positive": 6}


def test_nothing_usable_still_reports_every_skip(tmp_path: Path, store: Store) -> None:
    path = tmp_path / "empty-texts.csv"
    path.write_text(_csv_text([("   ", "a"), ("", "b")]), encoding="utf-8")
    error = store.fails(path, TEXT)
    assert error.code == "no_examples"
    assert error.report is not None and error.report["skipped_counts"] == {"empty_text": 2}
