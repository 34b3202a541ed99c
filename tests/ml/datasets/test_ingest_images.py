"""ingest of image zips: real digits, both layouts, junk, broken files and the stored result."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from ml.datasets.options import IngestLimits
from ml.datasets.store import load_dataset
from tests.factories.uploads import digits_zip, image_bytes, write_zip

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store

PNG = {seed: image_bytes(seed=seed) for seed in range(10)}


def test_digits_in_label_folders_are_counted_exactly(tmp_path: Path, store: Store) -> None:
    counts = digits_zip(tmp_path / "digits.zip")
    result = store.ingest(tmp_path / "digits.zip", "image_classification")
    report = result.report
    assert report["label_counts"] == counts
    assert report["num_examples"] == sum(counts.values()) == 1797
    assert report["num_labels"] == 10
    assert report["imbalance_ratio"] == max(counts.values()) / min(counts.values())
    assert report["skipped"] == [] and report["exact_duplicates"] == []
    assert report["warnings"] == []
    assert result.manifest["labels"] == [str(d) for d in range(10)]


def test_digits_with_labels_csv_inside_a_wrapper_folder(tmp_path: Path, store: Store) -> None:
    counts = digits_zip(tmp_path / "d.zip", per_class=15, layout="labels_csv", wrapper="mydata")
    result = store.ingest(tmp_path / "d.zip", "image_classification")
    assert result.report["label_counts"] == counts
    assert result.report["skipped"] == []
    assert result.manifest["examples"][0]["source"].startswith("mydata/images/")


def test_stored_dataset_is_content_addressed_read_only_and_loadable(
    tmp_path: Path, store: Store
) -> None:
    digits_zip(tmp_path / "d.zip", per_class=3)
    result = store.ingest(tmp_path / "d.zip", "image_classification")
    manifest_bytes = (result.path / "manifest.json").read_bytes()
    assert result.path == store.root / result.sha256
    assert hashlib.sha256(manifest_bytes).hexdigest() == result.sha256
    assert json.loads(manifest_bytes) == result.manifest
    assert (
        manifest_bytes
        == json.dumps(result.manifest, sort_keys=True, separators=(",", ":")).encode()
    )
    for example in result.manifest["examples"]:
        file = result.path / example["file"]
        assert file.name.split(".")[0] == hashlib.sha256(file.read_bytes()).hexdigest()
        assert not file.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert list(store.scratch.iterdir()) == []
    loaded = load_dataset(result.path)
    assert loaded.task == "image_classification" and not loaded.multilabel
    assert len(loaded.examples) == 30 and loaded.labels == tuple(result.manifest["labels"])
    assert all(e.file is not None and e.file.is_file() and e.text is None for e in loaded.examples)


def test_same_upload_twice_gives_the_same_dataset(tmp_path: Path, store: Store) -> None:
    digits_zip(tmp_path / "d.zip", per_class=3)
    first = store.ingest(tmp_path / "d.zip", "image_classification")
    second = store.ingest(tmp_path / "d.zip", "image_classification")
    assert first.sha256 == second.sha256 and first.path == second.path
    assert [p.name for p in store.root.iterdir()] == [first.sha256]
    assert list(store.scratch.iterdir()) == []


def test_os_junk_is_ignored_and_unsupported_files_are_reported(
    tmp_path: Path, store: Store
) -> None:
    upload = write_zip(
        tmp_path / "a.zip",
        {
            "cat/1.png": PNG[1],
            "cat/2.png": PNG[2],
            "dog/3.png": PNG[3],
            "dog/4.png": PNG[4],
            "__MACOSX/cat/._1.png": b"\x00\x05\x16\x07",
            "cat/.DS_Store": b"\x00\x00\x00\x01Bud1",
            ".hidden/5.png": PNG[5],
            "dog/notes.txt": b"some notes",
            "README.md": b"# my data",
        },
    )
    result = store.ingest(upload, "image_classification")
    assert store.skipped(result) == {
        "dog/notes.txt": "unsupported_type",
        "README.md": "unsupported_type",
    }
    assert result.report["label_counts"] == {"cat": 2, "dog": 2}


def test_broken_files_are_skipped_with_reasons(tmp_path: Path, store: Store) -> None:
    upload = write_zip(
        tmp_path / "a.zip",
        {
            "cat/1.png": PNG[1],
            "cat/2.png": PNG[2],
            "dog/3.png": PNG[3],
            "dog/4.png": PNG[4],
            "cat/text.jpg": b"I am a text file with a .jpg name\n",
            "cat/empty.png": b"",
            "dog/huge.png": image_bytes(size=(200, 200)),
            "loose.png": PNG[5],
        },
    )
    result = store.ingest(upload, "image_classification", IngestLimits(max_image_pixels=10_000))
    assert store.skipped(result) == {
        "cat/text.jpg": "corrupt",
        "cat/empty.png": "empty_file",
        "dog/huge.png": "too_large",
        "loose.png": "missing_label",
    }
    assert result.report["skipped_counts"] == {
        "corrupt": 1,
        "empty_file": 1,
        "missing_label": 1,
        "too_large": 1,
    }
    assert {w["code"] for w in result.report["warnings"]} == {"many_skipped"}


def test_content_decides_the_stored_extension(tmp_path: Path, store: Store) -> None:
    upload = write_zip(
        tmp_path / "a.zip",
        {"cat/really_a_png.jpg": PNG[1], "cat/2.png": PNG[2], "dog/3.bmp": image_bytes(fmt="BMP")},
    )
    result = store.ingest(upload, "image_classification", IngestLimits(min_examples_per_label=1))
    files = {e["source"]: e["file"] for e in result.manifest["examples"]}
    assert files["cat/really_a_png.jpg"].endswith(".png")
    assert files["dog/3.bmp"].endswith(".bmp")


def test_duplicate_images_are_kept_once_and_conflicts_are_kept_and_reported(
    tmp_path: Path, store: Store
) -> None:
    upload = write_zip(
        tmp_path / "a.zip",
        {
            "cat/1.png": PNG[1],
            "cat/1-copy.png": PNG[1],
            "cat/2.png": PNG[2],
            "dog/3.png": PNG[3],
            "dog/same-as-cat-2.png": PNG[2],
        },
    )
    result = store.ingest(upload, "image_classification")
    report = result.report
    assert [e["source"] for e in result.manifest["examples"]] == [
        "cat/1.png",
        "cat/2.png",
        "dog/3.png",
        "dog/same-as-cat-2.png",
    ]
    assert report["exact_duplicates"] == [
        {"sources": ["cat/1.png", "cat/1-copy.png"], "labels": ["cat"], "count": 2}
    ]
    assert report["conflicting_duplicates"] == [
        {
            "sources": ["cat/2.png", "dog/same-as-cat-2.png"],
            "labels_by_source": {"cat/2.png": ["cat"], "dog/same-as-cat-2.png": ["dog"]},
            "count": 2,
        }
    ]
    assert report["duplicate_counts"] == {"exact_groups": 1, "removed": 1, "conflicting_groups": 1}
    codes = {w["code"] for w in report["warnings"]}
    assert {"conflicting_duplicates", "exact_duplicates"} <= codes
    # the two copies share one stored file
    assert len(list((result.path / "files").iterdir())) == 3


def test_multilabel_labels_csv_accepts_lists_pipes_and_one_row_per_pair(
    tmp_path: Path, store: Store
) -> None:
    labels_csv = (
        "filename,label\n"
        'a.png,"[""cat"", ""outdoor""]"\n'
        "b.png,dog|indoor\n"
        "c.png,cat\n"
        "c.png,indoor\n"
        "missing.png,cat\n"
        "d.png,\n"
        "notes.txt,cat\n"
    )
    upload = write_zip(
        tmp_path / "a.zip",
        {
            "labels.csv": labels_csv.encode(),
            "a.png": PNG[1],
            "b.png": PNG[2],
            "c.png": PNG[3],
            "d.png": PNG[4],
            "e.png": PNG[5],
            "notes.txt": b"not an image",
        },
    )
    result = store.ingest(
        upload, "image_classification", IngestLimits(min_examples_per_label=1), multilabel=True
    )
    labels = {e["source"]: e["labels"] for e in result.manifest["examples"]}
    assert labels == {
        "a.png": ["cat", "outdoor"],
        "b.png": ["dog", "indoor"],
        "c.png": ["cat", "indoor"],
    }
    assert result.manifest["multilabel"] is True
    assert result.report["label_counts"] == {"cat": 2, "dog": 1, "indoor": 2, "outdoor": 1}
    assert store.skipped(result) == {
        "labels.csv line 7": "missing_label",
        "d.png": "missing_label",
        "e.png": "missing_label",
        "labels.csv line 6": "missing_file",
        "notes.txt": "unsupported_type",
    }


def test_single_label_labels_csv_refuses_a_second_label(tmp_path: Path, store: Store) -> None:
    labels_csv = "filename,label\na.png,cat\nb.png,dog\na.png,dog\na.png,cat\n"
    upload = write_zip(
        tmp_path / "a.zip", {"labels.csv": labels_csv.encode(), "a.png": PNG[1], "b.png": PNG[2]}
    )
    result = store.ingest(upload, "image_classification", IngestLimits(min_examples_per_label=1))
    assert store.skipped(result) == {"labels.csv line 4": "invalid_label"}
    assert result.report["label_counts"] == {"cat": 1, "dog": 1}


def test_labels_csv_without_the_label_column(tmp_path: Path, store: Store) -> None:
    upload = write_zip(
        tmp_path / "a.zip", {"labels.csv": b"file,class\na.png,cat\n", "a.png": PNG[1]}
    )
    error = store.fails(upload, "image_classification")
    assert error.code == "missing_column" and "'file'" in error.message


def test_nothing_usable_is_no_examples(tmp_path: Path, store: Store) -> None:
    upload = write_zip(tmp_path / "a.zip", {"cat/1.png": b"not an image", "dog/2.png": b"nor this"})
    error = store.fails(upload, "image_classification")
    assert (error.code, error.status) == ("no_examples", 422)
    assert "corrupt: 2" in error.message and "'cat/1.png'" in error.message


def test_a_single_label_left_after_skipping_is_single_label(tmp_path: Path, store: Store) -> None:
    upload = write_zip(
        tmp_path / "a.zip", {"cat/1.png": PNG[1], "cat/2.png": PNG[2], "dog/3.png": b"junk"}
    )
    error = store.fails(upload, "image_classification")
    assert (error.code, error.status) == ("single_label", 422)


def test_small_labels_and_tiny_images_are_warned_about(tmp_path: Path, store: Store) -> None:
    upload = write_zip(
        tmp_path / "a.zip",
        {"cat/1.png": PNG[1], "cat/2.png": PNG[2], "dog/3.png": image_bytes(size=(16, 40))},
    )
    report = store.ingest(upload, "image_classification").report
    assert report["labels_too_small"] == [{"label": "dog", "count": 1, "minimum": 2}]
    codes = {w["code"] for w in report["warnings"]}
    assert codes == {"labels_too_small", "tiny_images"}
