"""What a finished training run hands back, and the artifact config it describes."""

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from ml.backbones.spec import BackboneSpec
from ml.training.text_classifier import POOLING


@dataclass
class TrainOutcome:
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase | None
    task: str  # the registered task's name
    labels: list[str]  # label names, or target names for regression: one per output
    # The task's own config fields: labels, multilabel, temperature, thresholds (classification);
    # targets, target_scale, intervals, loss (regression).
    task_config: dict[str, Any]
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
            "task": self.task,
            "modality": backbone.modality,
            "library": backbone.library,
            "backbone": described,
            **self.task_config,
            "preprocessing": self.preprocessing,
            "method": self.method,
            "method_reason": self.method_reason,
            "hyperparameters": self.hyperparameters,
            "runtime": "torch",
            "versions": versions,
        }
