"""Target standardisation: the model learns (value - mean) / std, serving maps it back.

Standardised targets let one loss, one probe grid and one Huber delta serve any unit (prices in
euros, ages in years), and weigh several targets equally. The scale comes from the training
rows alone and travels in the artifact config as ``target_scale``.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# A spread this small relative to the values is a constant target: dividing by it would turn
# rounding noise into huge standardised values, so such a target is only centred (std 1).
_CONSTANT_SPREAD = 1e-12


@dataclass(frozen=True)
class TargetScale:
    mean: np.ndarray  # [T], float64
    std: np.ndarray  # [T], float64, never zero

    @classmethod
    def fit(cls, targets: np.ndarray | torch.Tensor) -> "TargetScale":
        values = np.asarray(targets, dtype=np.float64)
        if values.ndim != 2 or len(values) == 0:
            raise ValueError("target scale needs targets of shape [n, targets] with n >= 1")
        if not np.isfinite(values).all():
            raise ValueError("targets must be finite numbers")
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        constant = std <= _CONSTANT_SPREAD * np.maximum(1.0, np.abs(mean))
        return cls(mean, np.where(constant, 1.0, std))

    @classmethod
    def from_config(cls, config: dict[str, Sequence[float]]) -> "TargetScale":
        return cls(np.asarray(config["mean"], np.float64), np.asarray(config["std"], np.float64))

    def to_config(self) -> dict[str, list[float]]:
        return {"mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std]}

    def standardise(self, targets: torch.Tensor) -> torch.Tensor:
        """Raw targets [n, T] to what the model learns (float32, on the targets' device)."""
        mean = torch.as_tensor(self.mean, device=targets.device)
        std = torch.as_tensor(self.std, device=targets.device)
        return ((targets.double() - mean) / std).float()

    def restore(self, values: np.ndarray | torch.Tensor) -> np.ndarray:
        """Standardised outputs [n, T] back to the targets' own units (float64 numpy)."""
        if isinstance(values, torch.Tensor):
            values = values.detach().double().cpu().numpy()
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


def scale_of(info: dict[str, Any]) -> TargetScale:
    """The scale recorded in a ``Fitted.info`` (or an artifact config)."""
    return TargetScale.from_config(info["target_scale"])
