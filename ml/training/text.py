"""Texts for training: tokenized once into a cache of token ids, padded per batch.

Each batch is padded only to its own longest text, and training batches are drawn from groups
of similar length, so short texts do not pay for long ones.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from transformers import PreTrainedTokenizerBase

from ml.backbones.atomic import write_atomically
from ml.datasets.store import StoredDataset
from ml.training.loader import Loader

_TOKENIZE_CHUNK = 2048
# Training batches are sorted by length within windows of this many batches, then shuffled:
# padding falls sharply while every epoch still sees a different mix.
_LENGTH_GROUP_BATCHES = 50


@dataclass(frozen=True)
class CachedTokens:
    ids: np.ndarray  # int32, every example's tokens back to back
    offsets: np.ndarray  # int64 [N + 1]: example i is ids[offsets[i]:offsets[i + 1]]
    pad_id: int

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def tokenizer_key(tokenizer: PreTrainedTokenizerBase) -> str:
    """Identifies what the tokenizer does (vocabulary, normaliser, special tokens), not its path."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    described = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab()))
    return hashlib.sha256(described.encode()).hexdigest()[:32]


def cache_tokens(
    dataset: StoredDataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    cache_dir: Path,
    check: Callable[[], None] | None = None,
) -> CachedTokens:
    """Every text tokenized (special tokens added, truncated); cached after the first call."""
    name = f"{dataset.path.name}-{tokenizer_key(tokenizer)}-{max_length}.safetensors"
    target = cache_dir / "tokens" / name
    if not target.is_file():
        texts = [example.text for example in dataset.examples]
        if any(text is None for text in texts):
            raise ValueError(f"{dataset.path}: text dataset has an example without text")
        pieces: list[np.ndarray] = []
        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            if check is not None:
                check()
            encoded = tokenizer(
                texts[start : start + _TOKENIZE_CHUNK], truncation=True, max_length=max_length
            )
            pieces.extend(np.asarray(ids, dtype=np.int32) for ids in encoded["input_ids"])
        lengths = np.array([len(piece) for piece in pieces], dtype=np.int64)
        arrays = {
            "ids": np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32),
            "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        }
        write_atomically(target, lambda tmp: save_file(arrays, str(tmp)))
    arrays = load_file(str(target))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return CachedTokens(ids=arrays["ids"], offsets=arrays["offsets"], pad_id=int(pad_id))


class TextLoader(Loader):
    def __init__(self, tokens: CachedTokens, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = tokens
        self.lengths = tokens.lengths
        # Tensor cores want sequence lengths in multiples of 8; the CPU gains nothing from it.
        self.multiple = 8 if self.device.type == "cuda" else 1

    def _eval_order(self) -> list[np.ndarray]:
        # Evaluation order is free (rows carry their index), so sort it all by length.
        ordered = self.indices[np.argsort(self.lengths[self.indices], kind="stable")]
        size = self.batch_size
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]

    def _train_order(self, shuffled: np.ndarray) -> list[np.ndarray]:
        size = self.batch_size
        window = size * _LENGTH_GROUP_BATCHES
        batches: list[np.ndarray] = []
        for start in range(0, len(shuffled), window):
            chunk = shuffled[start : start + window]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        full = [batch for batch in batches if len(batch) == size] or batches
        mixed = torch.randperm(len(full), generator=self.generator).numpy()
        return [full[i] for i in mixed]

    def _inputs(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        lengths = self.lengths[rows]
        width = -(-int(lengths.max()) // self.multiple) * self.multiple
        columns = np.arange(width)
        valid = columns[None, :] < lengths[:, None]
        positions = np.minimum(
            self.tokens.offsets[rows][:, None] + columns[None, :], len(self.tokens.ids) - 1
        )
        ids = np.where(valid, self.tokens.ids[positions], self.tokens.pad_id)
        return {
            "input_ids": torch.from_numpy(ids.astype(np.int64)).to(self.device, non_blocking=True),
            "attention_mask": torch.from_numpy(valid.astype(np.int64)).to(
                self.device, non_blocking=True
            ),
        }
