"""A text is served exactly as it was trained on: the same cleaning, the same cap, the same
tokens. A long document that a dataset keeps is one that prediction accepts."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.config import Settings
from app.datasets.limits import limits_from
from ml.datasets.ingest import ingest
from ml.datasets.options import IngestOptions
from ml.datasets.store import load_dataset
from ml.inference.texts import TextPreprocessor
from ml.text_input import TextRejected, clean_text
from ml.training.text import cache_tokens
from tests.factories.uploads import tweets
from tests.ml.inference.builders import minilm_tokenizer


def _document(chars: int, offset: int = 0) -> str:
    """A long real-text document: tweets run together, cut at `chars` characters."""
    texts = [text for text, _ in tweets(400)]
    words = " ".join(texts[offset:] + texts[:offset])
    while len(words) < chars:
        words = f"{words} {words}"
    return words[:chars].strip() + "."


def test_a_long_document_trains_and_serves_as_the_same_tokens(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    long_doc = "  " + _document(25_484) + "\n"
    assert len(long_doc.strip()) > 20_000  # the length a user was refused at prediction
    upload = tmp_path / "docs.csv"
    with upload.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        writer.writerow([long_doc, "long"])
        writer.writerow([_document(3_000, offset=7), "short"])
        writer.writerow([_document(settings.max_text_chars + 10, offset=3), "too long"])
    result = ingest(
        upload,
        IngestOptions(task="text_classification", filename="docs.csv"),
        limits_from(settings),
        tmp_path / "datasets",
        tmp_path / "scratch",
    )
    skipped = result.report["skipped"]
    assert [s["reason"] for s in skipped] == ["too_large"], skipped
    assert str(settings.max_text_chars) in skipped[0]["detail"]
    dataset = load_dataset(tmp_path / "datasets" / result.sha256)
    trained = next(e for e in dataset.examples if e.labels == ("long",))
    # What serving does with the same raw text, through the same cleaning.
    served_text = clean_text(long_doc, settings.max_text_chars)
    assert trained.text == served_text
    tokenizer = minilm_tokenizer()
    max_length = 128
    tokens = cache_tokens(dataset, tokenizer, max_length, tmp_path / "cache")
    index = dataset.examples.index(trained)
    train_ids = tokens.ids[tokens.offsets[index] : tokens.offsets[index + 1]].tolist()
    serve = TextPreprocessor(tokenizer, max_length)([served_text])
    assert serve["input_ids"][0].tolist() == train_ids
    assert len(train_ids) == max_length  # truncated to max_length, on both sides


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty_text"),
        ("   \n\t", "empty_text"),
        (42, "corrupt"),
        ("ok \ud800", "corrupt"),
        ("x" * 11, "too_large"),
    ],
)
def test_unusable_texts_say_why(value: object, reason: str) -> None:
    with pytest.raises(TextRejected) as caught:
        clean_text(value, max_chars=10)
    assert caught.value.reason == reason and caught.value.detail


def test_texts_are_stripped_and_kept_whole_up_to_the_cap() -> None:
    assert clean_text("  a b \n", max_chars=3) == "a b"
    assert clean_text("é" * 10, max_chars=10) == "é" * 10
