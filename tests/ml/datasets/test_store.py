"""load_dataset: the trainer reads what ingest wrote, and refuses what it did not."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ml.datasets.manifest import canonical_json
from ml.datasets.store import DatasetFormatError, load_dataset

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store


def _dataset(tmp_path: Path, store: Store) -> Path:
    upload = tmp_path / "t.jsonl"
    upload.write_text('{"text": "a b", "label": ["x", "y"]}\n{"text": "c d", "label": "y"}\n')
    return store.ingest(upload, "text_classification", multilabel=True).path


def test_round_trip(tmp_path: Path, store: Store) -> None:
    loaded = load_dataset(_dataset(tmp_path, store))
    assert loaded.multilabel and loaded.labels == ("x", "y")
    assert [(e.text, e.labels, e.source) for e in loaded.examples] == [
        ("a b", ("x", "y"), "line 1"),
        ("c d", ("y",), "line 2"),
    ]


def test_a_modified_manifest_is_refused(tmp_path: Path, store: Store) -> None:
    path = _dataset(tmp_path, store)
    manifest = json.loads((path / "manifest.json").read_bytes())
    manifest["examples"][0]["labels"] = ["y"]
    os.chmod(path / "manifest.json", 0o644)
    (path / "manifest.json").write_bytes(canonical_json(manifest))
    with pytest.raises(DatasetFormatError, match="sha256"):
        load_dataset(path)


def test_file_entries_outside_files_are_refused(tmp_path: Path) -> None:
    manifest = {
        "format": "hone.dataset/1",
        "task": "image_classification",
        "multilabel": False,
        "labels": ["a", "b"],
        "examples": [{"labels": ["a"], "file": "../../etc/passwd", "source": "x"}],
    }
    payload = canonical_json(manifest)
    path = tmp_path / hashlib.sha256(payload).hexdigest()
    path.mkdir()
    (path / "manifest.json").write_bytes(payload)
    with pytest.raises(DatasetFormatError, match="file entry"):
        load_dataset(path)


def _write(tmp_path: Path, manifest: dict[str, object]) -> Path:
    payload = canonical_json(manifest)
    path = tmp_path / hashlib.sha256(payload).hexdigest()
    path.mkdir()
    (path / "manifest.json").write_bytes(payload)
    return path


def _regression(*targets: object) -> dict[str, object]:
    return {
        "format": "hone.dataset/1",
        "task": "text_regression",
        "multilabel": False,
        "targets": ["price", "rent"],
        "examples": [
            {"target": target, "text": f"t{i}", "source": f"line {i}"}
            for i, target in enumerate(targets)
        ],
    }


def test_a_regression_dataset_reads_back_its_target_names_and_numbers(tmp_path: Path) -> None:
    loaded = load_dataset(_write(tmp_path, _regression([1.5, 2], [3, -4.25])))
    assert loaded.task == "text_regression" and loaded.labels == ("price", "rent")
    assert [e.target for e in loaded.examples] == [(1.5, 2.0), (3.0, -4.25)]


@pytest.mark.parametrize("bad", [[1.0], [1.0, True], [1.0, "2"], [], None])
def test_regression_rows_that_ingest_never_writes_are_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(DatasetFormatError, match="target"):
        load_dataset(_write(tmp_path, _regression([1.0, 2.0], bad)))


def test_an_unknown_task_is_a_format_error(tmp_path: Path) -> None:
    manifest = {**_regression([1.0, 2.0]), "task": "audio_regression"}
    with pytest.raises(DatasetFormatError, match="audio_regression"):
        load_dataset(_write(tmp_path, manifest))
