"""Validation outputs: a model's outputs for a loader, in the loader's order.

What the outputs are scored with is the task's (ml/tasks): summaries, scores, final reports.
"""

from collections.abc import Callable

import torch

from ml.device import autocast
from ml.training.loader import Loader
from ml.training.model import forward_logits


def predict(
    model: torch.nn.Module, loader: Loader, check: Callable[[], None] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) on the CPU in fp32, in the loader's order."""
    model.eval()
    logits, targets = [], []
    with torch.inference_mode(), autocast(loader.device):
        for batch in loader.batches():
            if check is not None:
                check()
            logits.append(forward_logits(model, batch.inputs).float().cpu())
            targets.append(batch.targets.cpu())
    return torch.cat(logits), torch.cat(targets)
