"""Zip bombs: declared sizes are only an early check, real decompressed bytes are counted."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.preflight import preflight
from tests.factories.uploads import image_bytes, write_zip, zip_with_lying_size

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store

OPTIONS = IngestOptions(task="image_classification", filename="bomb.zip")


def test_entry_lying_about_its_size_is_stopped_by_the_real_byte_count(
    tmp_path: Path, store: Store
) -> None:
    upload = zip_with_lying_size(tmp_path / "bomb.zip", real_bytes=5_000_000, declared_bytes=100)
    limits = IngestLimits(max_uncompressed_bytes=1_000_000)
    # The declaration passes the cheap check ...
    assert preflight(upload, OPTIONS, limits) == "image_zip"
    # ... but decompression is counted and stopped.
    error = store.fails(upload, "image_classification", limits)
    assert (error.code, error.status) == ("archive_too_large", 413)


def test_one_lying_file_over_the_per_file_cap_is_skipped(tmp_path: Path, store: Store) -> None:
    upload = zip_with_lying_size(tmp_path / "bomb.zip", real_bytes=300_000, declared_bytes=100)
    limits = IngestLimits(max_file_bytes=200_000)
    result = store.ingest(upload, "image_classification", limits)
    assert store.skipped(result) == {"cat/bomb.png": "too_large"}
    assert result.report["label_counts"] == {"cat": 1, "dog": 1}


def test_lying_size_within_the_caps_is_a_damaged_entry(tmp_path: Path, store: Store) -> None:
    upload = zip_with_lying_size(tmp_path / "bomb.zip", real_bytes=5_000, declared_bytes=100)
    result = store.ingest(upload, "image_classification")
    assert store.skipped(result) == {"cat/bomb.png": "corrupt"}


def test_damaged_compressed_data_skips_that_entry_only(tmp_path: Path, store: Store) -> None:
    good = {"cat/1.png": image_bytes(seed=1), "dog/2.png": image_bytes(seed=2)}
    damaged = image_bytes(seed=9, size=(64, 64))
    upload = write_zip(tmp_path / "a.zip", {**good, "dog/1.png": damaged})
    data = bytearray(upload.read_bytes())
    name_at = data.index(b"dog/1.png")  # first hit: the local header; its data follows the name
    for i in range(name_at + 40, name_at + 60):
        data[i] ^= 0xFF
    upload.write_bytes(bytes(data))
    result = store.ingest(upload, "image_classification", IngestLimits(min_examples_per_label=1))
    assert store.skipped(result) == {"dog/1.png": "corrupt"}
