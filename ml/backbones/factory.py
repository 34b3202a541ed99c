"""Build a classifier from a catalog entry: pretrained backbone, fresh head, the model's own
preprocessing. The Hugging Face cache (HF_HOME, HF_HUB_OFFLINE) governs hub downloads;
``cache_dir`` holds what Hone derives from weights (converted files, remembered hashes).
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import timm
import torch
from timm.data import resolve_data_config
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ml.backbones.hashing import files_sha256
from ml.backbones.packages import package_weights
from ml.backbones.spec import BackboneSpec
from ml.backbones.weights import split_revision, timm_weights_file, transformers_dir, weight_files

ProblemType = Literal["single_label_classification", "multi_label_classification", "regression"]


def build_image_model(
    spec: BackboneSpec, num_classes: int, cache_dir: Path
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """timm model with pretrained backbone weights and a fresh ``num_classes`` head, plus timm's
    data config for it (input_size, mean, std, interpolation, crop_pct, crop_mode)."""
    _require(spec, "image")
    if spec.source == "random":
        kwargs = dict(spec.options.get("kwargs", {}))
        model = timm.create_model(spec.arch, pretrained=False, num_classes=num_classes, **kwargs)
    else:
        overlay = (
            {"hf_hub_id": spec.location}
            if spec.source == "hub"
            else {"file": str(timm_weights_file(spec, cache_dir))}
        )
        model = timm.create_model(
            spec.arch, pretrained=True, num_classes=num_classes, pretrained_cfg_overlay=overlay
        )
        # timm drops the pretrained head only when the class count differs from it; a head
        # that happens to have the same size still belongs to the old task.
        pretrained_cfg: dict[str, Any] = getattr(model, "pretrained_cfg", {})
        if num_classes == pretrained_cfg.get("num_classes"):
            model.reset_classifier(num_classes)  # type: ignore[operator]
    size = spec.input_size
    overrides = {"input_size": (3, size, size)} if size else {}
    return model, resolve_data_config(overrides, model=model)


def build_text_model(
    spec: BackboneSpec, num_labels: int, cache_dir: Path, *, multilabel: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Sequence classifier with a fresh ``num_labels`` head from the spec's weights, and its
    tokenizer. Remote code is never run."""
    _require(spec, "text")
    problem_type: ProblemType = (
        "multi_label_classification" if multilabel else "single_label_classification"
    )
    if num_labels == 1 and not multilabel:
        # transformers refuses a one-output classifier; one output is a regression head
        # (Hone keeps only the encoder either way: ml/training/text_classifier.py).
        problem_type = "regression"
    if spec.source == "random":
        config = AutoConfig.for_model(**spec.options["config"])
        config.num_labels = num_labels
        config.problem_type = problem_type
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=False)
        tokenizer_package = spec.options.get("tokenizer_package")
        tokenizer_at = (
            package_weights(tokenizer_package, cache_dir)
            if tokenizer_package
            else Path(spec.options["tokenizer_dir"])
        )
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_at), trust_remote_code=False)
        return model, tokenizer
    if spec.source == "hub":
        where, revision = split_revision(spec.location or "")
    else:
        where, revision = str(transformers_dir(spec, cache_dir)), None
    model = AutoModelForSequenceClassification.from_pretrained(
        where,
        revision=revision,
        num_labels=num_labels,
        problem_type=problem_type,
        # A checkpoint that already has a head of another size gets a new one instead of failing.
        ignore_mismatched_sizes=True,
        trust_remote_code=False,
    )
    tokenizer = AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=False)
    return model, tokenizer


def weights_sha256(spec: BackboneSpec, cache_dir: Path) -> str:
    """sha256 of the weight file(s) the build loads (remembered in ``cache_dir``); a random
    backbone has none, so it is identified by ``random:`` + the hash of its options."""
    if spec.source == "random":
        canonical = json.dumps(dict(spec.options), sort_keys=True, separators=(",", ":"))
        return "random:" + hashlib.sha256(canonical.encode()).hexdigest()
    return files_sha256(weight_files(spec, cache_dir), cache_dir)


def _require(spec: BackboneSpec, modality: str) -> None:
    if spec.modality != modality:
        raise ValueError(f"backbone {spec.id!r} has modality {spec.modality!r}, not {modality!r}")
