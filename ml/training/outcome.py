"""What a finished training run hands back, and the artifact config it describes."""

from dataclasses import dataclass, field
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
    # The model's library when it is not the backbone's: "classical" (ml/classical) for a
    # linear model on raw pixels or TF-IDF, which uses no pretrained network.
    library: str | None = None
    # Files the artifact needs besides weights and config ({relative path: bytes}).
    artifact_files: dict[str, bytes] = field(default_factory=dict)
    # timm create_model arguments the trained model needs beyond the backbone's own: a ViT
    # fine-tuned at another size than its pretraining's has {"img_size": size}.
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    # What the model's head reads, for the artifact's backbone block: a text model's pooling
    # and layers (ml/training/text_classifier.py), an image model's stages and pixel grid
    # (ml/training/image_classifier.py); empty for a plain timm classifier.
    head: dict[str, Any] = field(default_factory=dict)

    def artifact_config(self, backbone: BackboneSpec, versions: dict[str, str]) -> dict[str, Any]:
        """config.json of the model artifact (docs/architecture.md)."""
        library = self.library or backbone.library
        described: dict[str, Any]
        if library == "classical":
            # No network: its features come from the preprocessing block (and artifact files).
            described = {"id": "classical", "arch": self.preprocessing["kind"]}
        else:
            described = {
                "id": backbone.id,
                "arch": backbone.arch,
                "weights_sha256": self.backbone_weights_sha256,
            }
            if library == "timm":
                # What load_artifact passes to timm.create_model besides arch and num_classes:
                # the factory builds random backbones with these, pretrained ones with none.
                random_init = backbone.source == "random"
                options = backbone.options.get("kwargs", {})
                described["kwargs"] = (dict(options) if random_init else {}) | self.model_kwargs
            else:
                described["pooling"] = POOLING
            described |= self.head
        return {
            "format": "hone.model/1",
            "task": self.task,
            "modality": backbone.modality,
            "library": library,
            "backbone": described,
            **self.task_config,
            "preprocessing": self.preprocessing,
            "method": self.method,
            "method_reason": self.method_reason,
            "hyperparameters": self.hyperparameters,
            "runtime": "torch",
            "versions": versions,
        }
