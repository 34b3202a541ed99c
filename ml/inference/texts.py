"""Text inputs: strings -> token ids padded to the longest member of the batch."""

from collections.abc import Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase

from ml.inference.errors import InputError

DEFAULT_MAX_LENGTH = 128


class TextPreprocessor:
    """Tokenizes a batch together, truncating each text to ``max_length`` tokens.

    Padding goes to the batch's longest text, not to ``max_length``: most requests are short
    and attention costs grow with the padded length. The attention mask keeps each text's
    logits independent of what it was batched with.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int = DEFAULT_MAX_LENGTH):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        texts: list[str] = []
        for i, text in enumerate(inputs):
            if not isinstance(text, str):
                raise InputError(i, "expected a string")
            texts.append(text)
        encoded = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="np",
        )
        return {name: np.asarray(value, dtype=np.int64) for name, value in encoded.items()}
