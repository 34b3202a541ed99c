"""TF-IDF features: fitted on the training texts, stored as JSON + safetensors (no pickle),
and rebuilt from those files into a vectorizer that gives the very same rows."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as load_tensors

from ml.classical import classical_candidate
from ml.classical.candidate import TfidfFeaturizer
from ml.classical.tfidf import (
    IDF_FILE,
    MAX_TERMS,
    MIN_TERMS,
    VOCABULARY_FILE,
    fit_vectorizer,
    load_vectorizer,
    term_budget,
)
from ml.datasets.store import StoredDataset
from ml.inference.errors import InputError
from ml.inference.texts import TfidfPreprocessor
from tests.ml.classical.classical_data import ingest_upload, topic_texts, write_csv

UNSEEN = [
    "pizza and pasta in the CAFE today",  # the accent is stripped: "cafe" is "café"
    "Tennis match, then a goal!",
    "a word nobody wrote before: zyzzyva",
    "",
    "software " * 200,
]


def _write(directory: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    return directory


def _fitted(tmp_path: Path, n: int = 90) -> tuple[TfidfFeaturizer, StoredDataset]:
    upload = write_csv(tmp_path / "topics.csv", ["text", "label"], topic_texts(n))
    dataset = ingest_upload(upload, "text_classification", tmp_path)
    featurizer = classical_candidate("text", dataset, np.arange(len(dataset.examples)))
    assert isinstance(featurizer, TfidfFeaturizer)
    return featurizer, dataset


def _featurizer(tmp_path: Path) -> TfidfFeaturizer:
    return _fitted(tmp_path)[0]


def test_a_vectorizer_rebuilt_from_its_files_gives_identical_rows(tmp_path: Path) -> None:
    featurizer = _featurizer(tmp_path)
    texts = [text for text, _ in topic_texts(90)] + UNSEEN
    files = featurizer.artifact_files()
    assert set(files) == {VOCABULARY_FILE, IDF_FILE}
    terms = json.loads(files[VOCABULARY_FILE])
    assert isinstance(terms, list) and len(terms) == featurizer.num_features
    assert "cafe" in terms and "café" not in terms  # accents stripped, as in serving
    assert load_tensors(files[IDF_FILE])["idf"].dtype == np.float32

    rebuilt = load_vectorizer(featurizer.preprocessing(), _write(tmp_path / "artifact", files))
    served = TfidfPreprocessor(rebuilt)(texts)["features"]
    fitted = TfidfPreprocessor(featurizer.vectorizer)(texts)["features"]
    assert served.dtype == np.float32 and served.shape == (len(texts), featurizer.num_features)
    np.testing.assert_array_equal(served, fitted)
    norms = np.linalg.norm(served, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    assert norms[len(texts) - 2] == 0.0  # the empty text: no known term


def test_features_of_a_dataset_are_its_rows_in_example_order(tmp_path: Path) -> None:
    featurizer, dataset = _fitted(tmp_path)
    features = featurizer.features(dataset)
    texts = [example.text or "" for example in dataset.examples]
    np.testing.assert_array_equal(
        features.numpy(), TfidfPreprocessor(featurizer.vectorizer)(texts)["features"]
    )


def test_the_preprocessing_block_spells_out_every_option(tmp_path: Path) -> None:
    featurizer = _featurizer(tmp_path)
    block = featurizer.preprocessing()
    # Everything transform depends on is in the block: word 1-2 grams, sublinear counts, L2 rows.
    assert block["kind"] == "tfidf" and block["num_features"] == featurizer.num_features
    assert block["ngram_range"] == [1, 2] and block["analyzer"] == "word"
    assert block["sublinear_tf"] is True and block["norm"] == "l2"
    assert {"token_pattern", "lowercase", "strip_accents"} <= block.keys()
    assert json.loads(json.dumps(block)) == block
    assert featurizer.description == (
        f"TF-IDF (1-2 grams, {featurizer.num_features:,} terms) + linear model"
    )


def test_terms_need_two_texts_unless_there_are_too_few(tmp_path: Path) -> None:
    texts = ["pizza pasta today", "pizza bread", "tennis goal", "tennis match today"]
    common = fit_vectorizer(texts)
    assert set(common.vocabulary_) == {"pizza", "tennis", "today"}
    tiny = fit_vectorizer(["one lonely sentence", "another different phrase"])
    assert "lonely" in tiny.vocabulary_  # no term is in two texts: every one is kept
    with pytest.raises(ValueError, match="no words"):
        fit_vectorizer(["!", "?", ""])


def test_more_texts_keep_fewer_terms() -> None:
    assert term_budget(500) == MAX_TERMS
    assert term_budget(10_000) == 2_000
    assert term_budget(10_000_000) == MIN_TERMS


def test_damaged_files_are_refused(tmp_path: Path) -> None:
    featurizer = _featurizer(tmp_path)
    files = featurizer.artifact_files()
    terms = json.loads(files[VOCABULARY_FILE])
    short = files | {VOCABULARY_FILE: json.dumps(terms[:-1]).encode()}
    with pytest.raises(ValueError, match="do not hold"):
        load_vectorizer(featurizer.preprocessing(), _write(tmp_path / "short", short))
    twice = files | {VOCABULARY_FILE: json.dumps([terms[0], *terms[:-1]]).encode()}
    with pytest.raises(ValueError, match="do not hold"):
        load_vectorizer(featurizer.preprocessing(), _write(tmp_path / "twice", twice))


def test_serving_rejects_inputs_that_are_not_text(tmp_path: Path) -> None:
    featurizer = _featurizer(tmp_path)
    with pytest.raises(InputError) as caught:
        TfidfPreprocessor(featurizer.vectorizer)(["fine", b"bytes"])
    assert caught.value.index == 1
