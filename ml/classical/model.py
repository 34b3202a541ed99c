"""The servable model of a classical candidate: one linear layer over precomputed features.

Its input is the ``features`` batch the classical preprocessors build (raw pixels or TF-IDF
rows), so the training code's helpers (``classifier_layer``, ``install_head``) and every
serving runtime (eager torch, ONNX) treat it like any other classifier.
"""

import torch

# The batch key the classical preprocessors fill and ``forward`` takes by name.
FEATURES_INPUT = "features"


class LinearOnFeatures(torch.nn.Module):
    """Logits (or standardised values) = ``classifier(features)``."""

    def __init__(self, num_features: int, num_outputs: int) -> None:
        super().__init__()
        self.classifier = torch.nn.Linear(num_features, num_outputs)

    def get_classifier(self) -> torch.nn.Linear:
        """The head, found the way timm models expose theirs."""
        return self.classifier

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.classifier(features)
        return output
