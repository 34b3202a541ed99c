"""bench/common.py: data written as real uploads, and one job through the service's path."""

import gzip
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.common import (
    EventLog,
    ingest_upload,
    markdown_table,
    per_class_sample,
    png_bytes,
    read_idx,
    train_and_save,
    tweet_splits,
    write_image_zip,
    write_text_csv,
)
from ml.artifacts import load_artifact
from ml.backbones.catalog import load_catalog
from ml.backbones.testing import TINY_IMAGE_ID, write_test_catalog


def _write_idx(path: Path, array: np.ndarray, code: int) -> Path:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.tobytes())
    return path


def test_read_idx_reads_shape_and_values(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(_write_idx(tmp_path / "x.gz", images, 0x08)), images)
    wide = np.array([1, -2, 70000], dtype=">i4")
    assert read_idx(_write_idx(tmp_path / "y.gz", wide, 0x0C)).tolist() == [1, -2, 70000]


def test_read_idx_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "not.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_per_class_sample_is_balanced_distinct_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 5])
    picked = per_class_sample(labels, 4, seed=1)
    assert Counter(labels[picked].tolist()) == {0: 4, 1: 4, 2: 4}
    assert len(set(picked.tolist())) == 12
    assert picked.tolist() == sorted(picked.tolist())
    assert np.array_equal(picked, per_class_sample(labels, 4, seed=1))
    assert not np.array_equal(picked, per_class_sample(labels, 4, seed=2))


def test_tweet_splits_are_disjoint_and_labelled() -> None:
    train, test = tweet_splits(50, 30, seed=0)
    assert (len(train), len(test)) == (50, 30)
    normalized = {" ".join(text.split()).casefold() for text, _ in train}
    assert not normalized & {" ".join(text.split()).casefold() for text, _ in test}
    assert {label for _, label in train + test} <= {"negative", "neutral", "positive"}


def test_uploads_ingest_into_the_datasets_they_describe(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [png_bytes(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(6)]
    upload = write_image_zip(tmp_path / "up.zip", images, ["a", "b", "a", "b", "a", "b"])
    dataset = ingest_upload(upload, "image_classification", tmp_path / "data")
    assert dataset.manifest["labels"] == ["a", "b"]
    assert len(dataset.manifest["examples"]) == 6
    assert dataset.path.parent == tmp_path / "data" / "datasets"

    rows = [("good day", "positive"), ("awful, simply awful", "negative"), ("fine", "positive")]
    texts = ingest_upload(write_text_csv(tmp_path / "t.csv", rows), "text_classification", tmp_path)
    assert sorted(e["text"] for e in texts.manifest["examples"]) == sorted(t for t, _ in rows)


def test_train_and_save_writes_a_loadable_artifact(tmp_path: Path) -> None:
    spec = load_catalog([write_test_catalog(tmp_path / "tiny.json")])[TINY_IMAGE_ID]
    rng = np.random.default_rng(0)
    # Two labels told apart by brightness, so the probe has something to learn.
    images = [
        png_bytes((rng.integers(0, 60, (16, 16)) + 180 * (i % 2)).astype(np.uint8))
        for i in range(24)
    ]
    upload = write_image_zip(tmp_path / "up.zip", images, ["dark", "light"] * 12)
    dataset = ingest_upload(upload, "image_classification", tmp_path / "data")

    trained = train_and_save(dataset.path, spec, "linear_probe", tmp_path / "job", device="cpu")

    artifact = load_artifact(trained.artifact_dir)
    assert artifact.config["labels"] == ["dark", "light"]
    assert artifact.config["versions"]["torch"]
    assert trained.outcome.method == "linear_probe"
    assert trained.train_seconds > 0 and trained.save_seconds > 0
    assert any(message.startswith("kept linear_probe") for _, _, message, _ in trained.hooks.events)
    assert (tmp_path / "job" / "cache").is_dir()  # its own cache: nothing shared with other jobs


def test_event_log_never_asks_to_stop_and_keeps_order() -> None:
    log = EventLog()
    log.event("info", "one")
    log.event("warn", "two", data={"x": 1})
    assert [(level, message) for _, level, message, _ in log.events] == [
        ("info", "one"),
        ("warn", "two"),
    ]
    assert log.events[0][0] <= log.events[1][0]
    assert log.should_stop() is None


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [[1, "x"], [2.5, "y"]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | y |"
    )
