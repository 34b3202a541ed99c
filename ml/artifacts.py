"""A trained model on disk: model.safetensors + config.json (+ hf/ for transformers models,
+ the fitted state of a classical model's features, e.g. tfidf/).

The format is described in docs/architecture.md. An artifact is rebuilt offline from its own
config, so serving never needs the hub, the catalog or the training code.
"""

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import timm
import torch
from safetensors.torch import load_model, save_model
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

from ml.classical.model import LinearOnFeatures
from ml.tasks import Task, UnknownTask, get_task
from ml.training.image_classifier import MultiDepthClassifier
from ml.training.text_classifier import POOLING, MeanPooledClassifier

FORMAT = "hone.model/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HF_DIR = "hf"


@dataclass
class LoadedArtifact:
    model: torch.nn.Module  # eval mode, on the CPU
    config: dict[str, Any]
    tokenizer: PreTrainedTokenizerBase | None
    path: Path


def save_artifact(
    dest: Path,
    model: torch.nn.Module,
    config: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase | None = None,
    files: Mapping[str, bytes] | None = None,
) -> None:
    """Write the artifact into a temporary sibling directory, then move it to dest at once.

    hf/ gets the model's transformers config (when it has one) and the tokenizer (when given);
    ``files`` ({relative path: bytes}) are what else the model needs, e.g. a classical text
    model's TF-IDF terms.

    dest must not exist: a version's artifact is immutable once the registry points at it.
    """
    if dest.exists():
        raise FileExistsError(f"artifact destination already exists: {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        # save_model drops the duplicate names of shared (tied) tensors that save_file refuses.
        save_model(model, str(tmp / WEIGHTS_FILE), force_contiguous=True)
        (tmp / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **config}, indent=2))
        hf_config = getattr(model, "config", None)
        if isinstance(hf_config, PretrainedConfig):
            hf_config.save_pretrained(tmp / HF_DIR)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp / HF_DIR)
        for name, data in (files or {}).items():
            target = tmp / _relative(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_artifact(path: Path) -> LoadedArtifact:
    """Rebuild the model from config.json without any download and load its weights strictly.

    The head has as many outputs as the artifact's task says (labels, or targets). Text models
    are a MeanPooledClassifier when config["backbone"]["pooling"] is "mean" (what the trainer
    writes; its head also reads TF-IDF rows when config["preprocessing"]["tfidf"] says how many),
    else a plain AutoModelForSequenceClassification. An image model with
    config["backbone"]["stages"] is a MultiDepthClassifier over the timm model. A classical
    model is one linear layer over as many features as its preprocessing block says.
    """
    config = json.loads((path / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    outputs = artifact_task(config, path).num_outputs(config)
    tokenizer: PreTrainedTokenizerBase | None = None
    model: torch.nn.Module
    if config["library"] == "timm":
        backbone = config["backbone"]
        stages = int(backbone.get("stages", 0))
        model = timm.create_model(
            backbone["arch"],
            pretrained=False,
            num_classes=0 if stages else outputs,
            **backbone.get("kwargs", {}),
        )
        if stages:
            model = MultiDepthClassifier(model, outputs, stages, int(backbone.get("pixel_side", 0)))
    elif config["library"] == "transformers":
        hf_dir = path / HF_DIR
        hf_config = AutoConfig.from_pretrained(hf_dir, local_files_only=True)
        if config["backbone"].get("pooling") == POOLING:
            encoder = AutoModel.from_config(hf_config)
            layers = int(config["backbone"].get("layers", 1))
            tfidf = config.get("preprocessing", {}).get("tfidf") or {}
            extra = int(tfidf.get("num_features", 0))
            model = MeanPooledClassifier(encoder, outputs, layers, extra)
        else:
            model = AutoModelForSequenceClassification.from_config(hf_config)
        tokenizer = AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)
    elif config["library"] == "classical":
        model = LinearOnFeatures(int(config["preprocessing"]["num_features"]), outputs)
    else:
        raise ValueError(f"unknown library {config['library']!r} in {path / CONFIG_FILE}")
    load_model(model, str(path / WEIGHTS_FILE), strict=True, device="cpu")
    model.eval()
    return LoadedArtifact(model=model, config=config, tokenizer=tokenizer, path=path)


def _relative(name: str) -> PurePosixPath:
    """A file name inside the artifact; ValueError for one that would leave it."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise ValueError(f"not a relative path inside the artifact: {name!r}")
    if path.parts[0] in (WEIGHTS_FILE, CONFIG_FILE, HF_DIR):
        raise ValueError(f"{name!r} is one of the artifact's own files")
    return path


def artifact_task(config: dict[str, Any], path: Path | None = None) -> Task:
    """The registered task an artifact was trained for; ValueError naming the file if none."""
    where = CONFIG_FILE if path is None else str(path / CONFIG_FILE)
    name = config.get("task")
    if not isinstance(name, str):
        raise ValueError(f"{where} names no task")
    try:
        return get_task(name)
    except UnknownTask as exc:
        raise ValueError(f"{where}: {exc.args[0]}") from None
