"""The fine-tuning step: optimiser, learning-rate schedule and one epoch of updates.

Kept lean because it is the hot loop: no host syncs per step (the loss is summed on the
device), the schedule is a pure function of the step, and the caller's per-step hook is one
call that returns at once unless it has something to do.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ml.device import autocast
from ml.tasks.base import LossFn
from ml.training.loader import Loader
from ml.training.model import (
    forward_logits,
    freeze_batchnorm_statistics,
    parameters_by_role,
)

# The head starts from the linear probe but still has the most to learn; the pretrained
# backbone should move gently (discriminative learning rates).
HEAD_LR_MULTIPLIER = 10.0
MAX_GRAD_NORM = 1.0


def lr_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """Linear warmup to 1 over warmup_steps, then cosine decay towards 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def build_optimizer(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """AdamW over four groups: backbone/head x decayed/not (biases and norm scales are not)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for _name, is_head, parameter in parameters_by_role(model):
        groups.setdefault((is_head, parameter.ndim > 1), []).append(parameter)
    param_groups = [
        {
            "params": params,
            "base_lr": learning_rate * (HEAD_LR_MULTIPLIER if is_head else 1.0),
            "weight_decay": weight_decay if decayed else 0.0,
        }
        for (is_head, decayed), params in sorted(groups.items())
    ]
    for group in param_groups:
        group["lr"] = group["base_lr"]
    return torch.optim.AdamW(param_groups, fused=device.type == "cuda")


def set_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


@dataclass
class EpochProgress:
    """Where an epoch is; what a mid-epoch checkpoint must keep to resume it exactly."""

    epoch: int
    batch: int  # batches of this epoch done
    step: int  # optimizer steps done in the whole run
    loss_sum: torch.Tensor  # summed training loss of this epoch's batches, on the device

    @property
    def mean_loss(self) -> float:
        return float(self.loss_sum) / max(self.batch, 1)


def train_one_epoch(
    model: torch.nn.Module,
    loader: Loader,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    progress: EpochProgress,
    *,
    total_steps: int,
    warmup_steps: int,
    freeze_batchnorm: bool = True,
    rng_state: torch.Tensor | None = None,
    on_step: Callable[[EpochProgress], None] | None = None,
) -> EpochProgress:
    """Train from progress.batch to the end of progress.epoch, updating progress in place."""
    model.train()
    if freeze_batchnorm:
        freeze_batchnorm_statistics(model)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = loader.device
    for batch in loader.batches(progress.epoch, progress.batch, rng_state):
        set_learning_rate(optimizer, lr_factor(progress.step, total_steps, warmup_steps))
        with autocast(device):
            logits = forward_logits(model, batch.inputs)
        loss = loss_fn(logits, batch.targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        progress.loss_sum += loss.detach()
        progress.batch += 1
        progress.step += 1
        if on_step is not None:
            on_step(progress)
    return progress
