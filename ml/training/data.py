"""One entry point from a stored dataset to cached model inputs, and from those to batches."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from ml.datasets.store import StoredDataset
from ml.tasks import get_task
from ml.training.images import CachedImages, ImageLoader, cache_images
from ml.training.loader import Loader
from ml.training.text import CachedTokens, TextLoader, cache_tokens

CachedInputs = CachedImages | CachedTokens


def prepare_inputs(
    dataset: StoredDataset,
    preprocessing: dict[str, Any],
    cache_dir: Path,
    tokenizer: PreTrainedTokenizerBase | None = None,
    check: Callable[[], None] | None = None,
) -> CachedInputs:
    """Decoded images or token ids for every example, from the cache (filled on first use)."""
    if get_task(dataset.task).modality == "text":
        if tokenizer is None:
            raise ValueError("a text dataset needs the backbone's tokenizer")
        return cache_tokens(dataset, tokenizer, preprocessing["max_length"], cache_dir, check)
    return cache_images(dataset, preprocessing, cache_dir, check)


def build_loader(
    inputs: CachedInputs,
    indices: np.ndarray,
    targets: torch.Tensor,
    batch_size: int,
    *,
    train: bool,
    device: torch.device,
    seed: int = 0,
) -> Loader:
    """Batches of `indices` rows: augmented and reshuffled per epoch when `train`."""
    kwargs: dict[str, Any] = {"train": train, "device": device, "seed": seed}
    if isinstance(inputs, CachedImages):
        return ImageLoader(inputs, indices, targets, batch_size, **kwargs)
    return TextLoader(inputs, indices, targets, batch_size, **kwargs)


def num_rows(inputs: CachedInputs) -> int:
    return len(inputs.pixels) if isinstance(inputs, CachedImages) else len(inputs.offsets) - 1
