"""TF-IDF rows of texts: scikit-learn's TfidfVectorizer, fitted on a job's training texts and
stored without pickle.

An artifact keeps the terms (JSON, in column order) and their idf weights (safetensors); the
options that shape a row are written out in full in its config's preprocessing block, so a
later change of Hone's defaults (or of scikit-learn's) cannot change an old model's inputs.
Serving rebuilds the vectorizer with ``vocabulary=`` and the saved ``idf_``: the same rows
as in training.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as load_tensors
from safetensors.numpy import save as save_tensors
from sklearn.feature_extraction.text import TfidfVectorizer

VOCABULARY_FILE = "tfidf/vocabulary.json"
IDF_FILE = "tfidf/idf.safetensors"
_IDF_KEY = "idf"
# The terms kept, most frequent first. The probe fits dense float32 [examples, terms] rows,
# whose cost grows with both: past MAX_VALUES (80 MB) fewer terms are kept, down to
# MIN_TERMS. Measured on 4,000 tweets (3 labels): 2,000, 5,000 and 9,494 terms scored within
# 0.5 accuracy points of each other, and the probe's time grew about linearly with them.
MAX_TERMS = 20_000
MIN_TERMS = 1_000
MAX_VALUES = 20_000_000
# A term must occur in this many training texts: one-off words and bigrams only add noise.
# Datasets too small to have any such term fall back to 1.
MIN_DF = 2

# What turns a text into a row. Everything that affects ``transform`` is spelled out.
OPTIONS: dict[str, Any] = {
    "analyzer": "word",
    "ngram_range": [1, 2],
    "token_pattern": r"(?u)\b\w\w+\b",
    "lowercase": True,
    "strip_accents": "unicode",
    "sublinear_tf": True,
    "norm": "l2",
}


def _vectorizer(options: Mapping[str, Any], **extra: Any) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=str(options["analyzer"]),
        ngram_range=(int(options["ngram_range"][0]), int(options["ngram_range"][1])),
        token_pattern=str(options["token_pattern"]),
        lowercase=bool(options["lowercase"]),
        strip_accents=options["strip_accents"],
        sublinear_tf=bool(options["sublinear_tf"]),
        norm=options["norm"],
        dtype=np.float32,
        **extra,
    )


def term_budget(num_texts: int) -> int:
    """How many terms a vocabulary fitted on ``num_texts`` texts keeps at most."""
    return max(MIN_TERMS, min(MAX_TERMS, MAX_VALUES // max(num_texts, 1)))


def fit_vectorizer(texts: Sequence[str], max_terms: int | None = None) -> TfidfVectorizer:
    """The vectorizer fitted on ``texts`` (keeping ``term_budget`` terms unless told);
    ValueError when they hold no word at all."""
    max_terms = term_budget(len(texts)) if max_terms is None else max_terms
    for min_df in dict.fromkeys((min(MIN_DF, len(texts)), 1)):
        vectorizer = _vectorizer(OPTIONS, min_df=min_df, max_features=max_terms)
        try:
            vectorizer.fit(texts)
        except ValueError:  # "empty vocabulary" or "no terms remain" at this min_df
            continue
        return vectorizer
    raise ValueError("the training texts hold no words for TF-IDF features")


def preprocessing_of(vectorizer: TfidfVectorizer) -> dict[str, Any]:
    """The artifact config's preprocessing block of a fitted vectorizer."""
    return {"kind": "tfidf", **OPTIONS, "num_features": len(vectorizer.vocabulary_)}


def vectorizer_files(vectorizer: TfidfVectorizer) -> dict[str, bytes]:
    """The artifact's files that hold the fitted state: terms and idf weights."""
    terms = [str(term) for term in vectorizer.get_feature_names_out()]
    idf = np.ascontiguousarray(vectorizer.idf_, dtype=np.float32)
    return {
        VOCABULARY_FILE: json.dumps(terms, ensure_ascii=False).encode(),
        IDF_FILE: save_tensors({_IDF_KEY: idf}),
    }


def load_vectorizer(preprocessing: Mapping[str, Any], artifact_dir: Path) -> TfidfVectorizer:
    """The fitted vectorizer rebuilt from an artifact's files and preprocessing block."""
    terms = json.loads((artifact_dir / VOCABULARY_FILE).read_text(encoding="utf-8"))
    if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
        raise ValueError(f"{artifact_dir / VOCABULARY_FILE} is not a list of terms")
    idf = load_tensors((artifact_dir / IDF_FILE).read_bytes())[_IDF_KEY]
    expected = int(preprocessing["num_features"])
    if len(terms) != expected or len(set(terms)) != expected or idf.shape != (expected,):
        raise ValueError(f"{artifact_dir}: the TF-IDF files do not hold {expected} terms")
    vectorizer = _vectorizer(preprocessing, vocabulary={term: i for i, term in enumerate(terms)})
    vectorizer.idf_ = idf
    return vectorizer


def tfidf_rows(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> np.ndarray:
    """Dense float32 [n, terms] rows, each of unit L2 norm (or zero: no known term)."""
    return np.asarray(vectorizer.transform(texts).toarray(), dtype=np.float32)
