"""`auto`'s probe with TF-IDF, for texts: the frozen-feature probe's and the TF-IDF model's
outputs blended, the probe's share chosen out of fold on the training rows.

Both heads are linear, so their blend is one linear layer over the pooled states and the
TF-IDF rows side by side: weight [s W_probe | (1 - s) W_tfidf], bias s b_probe + (1 - s)
b_tfidf. A MeanPooledClassifier with ``extra_features`` serves it, through the same registry,
batcher, runtimes and predict contract as the probe. Blending logits is the normalised
geometric mean of the two models' probabilities (classification), a weighted mean of their
standardised values (regression).

The share is a hyperparameter like the probe's L2: walked on the out-of-fold outputs of the
training rows only (both heads' are honest there), so the validation rows that rank `auto`'s
candidates stay unseen by it. Share 1 is the probe alone, and wins every tie.

Why: sentence embeddings and word n-grams err on different texts. On the benchmark's texts
the TF-IDF model was the better one on BBC News and the worse one on tweets, and neither the
probe nor TF-IDF was best on both (bench/RESULTS.md).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ml.tasks import Fitted, ProbeFit, Task

# The probe's candidate shares, from the probe alone down.
SHARES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


@dataclass
class Blend:
    share: float  # the probe's; 1 - share is the TF-IDF model's
    fit: ProbeFit  # the blended head over [pooled states | TF-IDF rows]
    tried: list[dict[str, float]] = field(default_factory=list)  # {"share", "score"} per share

    def describe(self) -> str:
        return f"{self.share:.1f} : {1 - self.share:.1f}"


def blended(first: ProbeFit, second: ProbeFit, share: float) -> ProbeFit:
    """The head whose outputs blend first's and second's, over first's features followed by
    second's: each model's outputs divided by their spread (the out-of-fold outputs'
    standard deviation), weighed ``share`` : 1 - share, and brought back to the spread the
    two have between them. Without the spreads a model with small logits would count for
    nothing: on BBC News the TF-IDF head, under strong L2, had logits about 1/700 of the
    probe's and answers as good (bench/RESULTS.md)."""
    spreads = [float(fit.oof.float().std().clamp_min(1e-12)) for fit in (first, second)]
    joint = share * spreads[0] + (1.0 - share) * spreads[1]
    a, b = joint * share / spreads[0], joint * (1.0 - share) / spreads[1]

    def side_by_side(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([a * x, b * y.to(x)], dim=1)

    return ProbeFit(
        weight=side_by_side(first.weight, second.weight),
        bias=a * first.bias + b * second.bias.to(first.bias),
        train_weight=side_by_side(first.train_weight, second.train_weight),
        train_bias=a * first.train_bias + b * second.train_bias.to(first.train_bias),
        l2=first.l2,
        oof=a * first.oof + b * second.oof.to(first.oof),
        folds=first.folds,
        details={"share": share, "scales": [a, b], "probe": first.details, "tfidf": second.details},
    )


def choose_blend(
    task: Task,
    probe: ProbeFit,
    tfidf: ProbeFit,
    targets: torch.Tensor,
    rows: np.ndarray,
    fitted: Fitted,
) -> Blend:
    """The share whose blended out-of-fold outputs on ``rows`` score best by the task's score
    (the larger share on a tie), and the blended head at it. Both fits' outputs are in the
    same row order as ``targets``."""
    at = torch.as_tensor(rows)
    truth = targets.cpu()[at]
    best: tuple[Any, Blend] | None = None
    tried: list[dict[str, float]] = []
    for share in SHARES:
        blend = Blend(share, blended(probe, tfidf, share), tried)
        outputs = blend.fit.oof.float().cpu()[at]
        score = task.score(task.summarize(outputs, truth, fitted))
        tried.append({"share": share, "score": float(score[0])})
        if best is None or score > best[0]:
            best = (score, blend)
    assert best is not None
    return best[1]
