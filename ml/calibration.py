"""Temperature scaling: one scalar fitted on validation logits so that scores mean probabilities.

Argmax predictions do not change; only the confidence does. Expected calibration error (ECE)
is reported before and after so the effect is visible in the model's metrics.
"""

import numpy as np
import torch
import torch.nn.functional as F

ECE_BINS = 15
# exp(+-4) keeps a degenerate validation set (all correct, huge margins) from driving T to 0 or
# infinity; real fits land well inside.
_MAX_ABS_LOG_T = 4.0


def probabilities(logits: torch.Tensor, temperature: float, multilabel: bool) -> torch.Tensor:
    scaled = logits.float() / temperature
    return torch.sigmoid(scaled) if multilabel else torch.softmax(scaled, dim=-1)


def _nll(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets)


def fit_temperature(
    logits: torch.Tensor, targets: torch.Tensor, *, multilabel: bool = False, max_iter: int = 100
) -> float:
    """The T minimising validation NLL of logits / T, optimised as log T (so T stays positive).

    targets: label indices (single-label) or a 0/1 matrix (multi-label).
    """
    logits = logits.detach().float().cpu()
    targets = targets.detach().cpu()
    if len(logits) == 0:
        return 1.0
    log_t = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(logits / log_t.exp(), targets, multilabel)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().clamp(-_MAX_ABS_LOG_T, _MAX_ABS_LOG_T).exp())
    if temperature < 1.0 and _all_correct(logits, targets, multilabel):
        # Without a single mistake the NLL falls all the way to T -> 0: that is no evidence
        # for sharpening, only for a validation set too small or too easy to show any.
        return 1.0
    return temperature


def _all_correct(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> bool:
    if multilabel:
        return bool(((logits > 0) == (targets > 0.5)).all())
    return bool((logits.argmax(dim=1) == targets).all())


def expected_calibration_error(
    probs: torch.Tensor, targets: torch.Tensor, *, multilabel: bool = False, bins: int = ECE_BINS
) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins.

    Single-label: the top class's probability against whether it is right. Multi-label: every
    (example, label) decision at 0.5, with its confidence max(p, 1 - p).
    """
    p = probs.detach().float().cpu().numpy()
    t = targets.detach().cpu().numpy()
    if multilabel:
        confidence = np.maximum(p, 1 - p).ravel()
        correct = ((p >= 0.5) == (t >= 0.5)).ravel()
    else:
        confidence = p.max(axis=1)
        correct = p.argmax(axis=1) == t
    if confidence.size == 0:
        return 0.0
    # Bin b holds confidences in (b/bins, (b+1)/bins]; the top edge is inclusive.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    gap = np.bincount(which, weights=correct - confidence, minlength=bins)
    return float(np.abs(gap).sum() / confidence.size)
