"""Text inputs: strings -> token ids padded to the longest member of the batch (with the TF-IDF
rows beside them for a head that reads both), or the TF-IDF rows of a classical text model."""

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from transformers import PreTrainedTokenizerBase

from ml.classical.model import FEATURES_INPUT
from ml.classical.tfidf import tfidf_rows
from ml.inference.errors import InputError

DEFAULT_MAX_LENGTH = 128


class TextPreprocessor:
    """Tokenizes a batch together, truncating each text to ``max_length`` tokens.

    Padding goes to the batch's longest text, not to ``max_length``: most requests are short
    and attention costs grow with the padded length. The attention mask keeps each text's
    logits independent of what it was batched with.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int = DEFAULT_MAX_LENGTH,
        tfidf: TfidfVectorizer | None = None,
    ):
        self.tokenizer = tokenizer
        self.max_length = max_length
        # A head that also reads the texts' TF-IDF rows (ml/training/blend.py) gets them as
        # ``features``, computed from the whole text like training's.
        self.tfidf = tfidf

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        texts = _texts(inputs)
        encoded = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        batch = {name: np.asarray(value, dtype=np.int64) for name, value in encoded.items()}
        if self.tfidf is not None:
            batch[FEATURES_INPUT] = tfidf_rows(self.tfidf, texts)
        return batch


class TfidfPreprocessor:
    """Texts -> the ``features`` batch of a classical text model: the fitted vectorizer's
    dense, L2-normalised rows (each independent of the rest of its batch)."""

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self.vectorizer = vectorizer

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        return {FEATURES_INPUT: tfidf_rows(self.vectorizer, _texts(inputs))}


def _texts(inputs: Sequence[object]) -> list[str]:
    texts: list[str] = []
    for i, text in enumerate(inputs):
        if not isinstance(text, str):
            raise InputError(i, "expected a string")
        texts.append(text)
    return texts
