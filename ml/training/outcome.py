"""What a finished training run hands back, and the artifact config it describes."""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ml.backbones.spec import BackboneSpec
from ml.training.text_classifier import POOLING

TASK_OF = {"image": "image_classification", "text": "text_classification"}


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    labels: list[str]
    multilabel: bool
    thresholds: list[float] | None  # multi-label: predict a label when its probability >= this
    temperature: float  # divide logits by this before softmax / sigmoid
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]  # resolved
    method: str  # what ran and was kept: "linear_probe" | "lp_ft"
    method_reason: str
    class_weights: list[float] | None
    preprocessing: dict[str, Any]
    backbone_weights_sha256: str
    resumed_from_step: int | None

    def artifact_config(self, backbone: BackboneSpec, versions: dict[str, str]) -> dict[str, Any]:
        """config.json of the model artifact (docs/architecture.md)."""
        described: dict[str, Any] = {
            "id": backbone.id,
            "arch": backbone.arch,
            "weights_sha256": self.backbone_weights_sha256,
        }
        if backbone.library == "timm":
            # What load_artifact passes to timm.create_model besides arch and num_classes: the
            # factory builds random backbones with these, pretrained ones with none.
            random_init = backbone.source == "random"
            described["kwargs"] = dict(backbone.options.get("kwargs", {})) if random_init else {}
        else:
            described["pooling"] = POOLING
        return {
            "format": "hone.model/1",
            "task": TASK_OF[backbone.modality],
            "modality": backbone.modality,
            "library": backbone.library,
            "backbone": described,
            "labels": self.labels,
            "multilabel": self.multilabel,
            "thresholds": self.thresholds,
            "temperature": self.temperature,
            "preprocessing": self.preprocessing,
            "method": self.method,
            "method_reason": self.method_reason,
            "hyperparameters": self.hyperparameters,
            "runtime": "torch",
            "versions": versions,
        }
