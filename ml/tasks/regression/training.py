"""The training section of a regression task: standardised targets, MSE or Huber, a ridge
probe, RMSE-style validation and split-conformal intervals fitted on held-out residuals."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.tasks.base import Fitted, LossFn, ProbeFit, Score
from ml.tasks.regression.conformal import fit_conformal, half_widths
from ml.tasks.regression.metrics import per_target, residual_histogram
from ml.tasks.regression.ridge import ridge_cv
from ml.tasks.regression.scale import TargetScale, scale_of
from ml.training.split import stratified_split

if TYPE_CHECKING:
    from ml.datasets.store import StoredDataset

LOSSES = ("mse", "huber")
# On standardised targets: quadratic within one standard deviation, linear beyond it.
HUBER_DELTA = 1.0
# Validation is stratified on quantile bins of the first target, each expected to send at
# least this many rows to validation, and no finer than deciles.
_ROWS_PER_BIN = 2
_MAX_BINS = 10
REPORTED_COVERAGE = 0.9
# predicted_vs_true is for a scatter plot: more points than this only slow the page.
_MAX_PLOT_POINTS = 1000


def loss_name(hp: dict[str, Any]) -> str:
    """The hyperparameter ``loss``: "mse" (also for "auto" or missing) or "huber"."""
    name = hp.get("loss", "auto")
    name = "mse" if name in (None, "auto") else name
    if name not in LOSSES:
        raise ValueError(f"unknown regression loss {name!r}; known: {', '.join(LOSSES)}")
    return str(name)


def quantile_bins(values: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean [N, bins] membership of each value in its quantile bin."""
    count = max(1, min(_MAX_BINS, int(len(values) * fraction / _ROWS_PER_BIN)))
    edges = np.quantile(values, np.linspace(0, 1, count + 1)[1:-1])
    # Tied values share a bin; bins that ties left empty are dropped.
    _, bins = np.unique(np.searchsorted(edges, values, side="right"), return_inverse=True)
    return np.eye(bins.max() + 1, dtype=bool)[bins.reshape(-1)]


def _pick(n: int, most: int) -> np.ndarray:
    """At most ``most`` evenly spaced row indices of n."""
    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


class RegressionTraining:
    """Task's training section for one or several numeric targets (see ml/tasks/base.py)."""

    def names(self, dataset: "StoredDataset") -> list[str]:
        return list(dataset.labels)

    def encode(self, dataset: "StoredDataset", names: Sequence[str]) -> torch.Tensor:
        rows = [tuple(example.target) for example in dataset.examples]
        if any(len(row) != len(names) for row in rows):
            raise ValueError(f"every example needs one number per target ({len(names)})")
        return torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(names))

    def split(self, targets: torch.Tensor, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
        first = targets.reshape(len(targets), -1)[:, 0].double().cpu().numpy()
        return stratified_split(quantile_bins(first, fraction), fraction, seed)

    def fit_targets(self, targets: torch.Tensor, names: Sequence[str]) -> Fitted:
        scale = TargetScale.fit(targets.reshape(len(targets), -1).cpu())
        return Fitted(
            num_outputs=len(names),
            names=list(names),
            info={"target_scale": scale.to_config()},
            transform=scale.standardise,
        )

    def loss(self, fitted: Fitted, hp: dict[str, Any], device: torch.device) -> LossFn:
        name = loss_name(hp)
        fitted.info["loss"] = name  # final_report writes it into the artifact config
        # Outputs are promoted to fp32 so bf16 autocast never reaches the loss.
        if name == "huber":
            return lambda out, y: F.huber_loss(out.float(), y.float(), delta=HUBER_DELTA)
        return lambda out, y: F.mse_loss(out.float(), y.float())

    def probe(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        train_rows: np.ndarray,
        fitted: Fitted,
        *,
        seed: int,
        scale: bool = True,
    ) -> ProbeFit:
        # Ridge centres the features and never scales them, so `scale` changes nothing here.
        fit = ridge_cv(features, targets, train_rows, seed=seed)

        def out(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=features.device, dtype=torch.float32)

        return ProbeFit(
            weight=out(fit.weight),
            bias=out(fit.bias),
            train_weight=out(fit.train_weight),
            train_bias=out(fit.train_bias),
            l2=fit.alpha,
            oof=out(fit.oof),
            folds=fit.folds,
            details={
                "model": "ridge",
                "penalty": "sum of squared errors + alpha * |W|^2 (scikit-learn Ridge)",
                "alpha": fit.alpha,
                "alphas": fit.alphas,
                "cv_mse": fit.cv_mse,  # standardised targets, mean over folds
            },
        )

    def summarize(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> dict[str, float]:
        predicted, truth = _original(outputs, targets, fitted)
        scores = per_target(predicted, truth)
        return {"val_loss": _standardised_mse(outputs, targets)} | {
            f"val_{name}": float(values.mean()) for name, values in scores.items()
        }

    def score(self, summary: dict[str, float]) -> Score:
        return (-summary["val_loss"],)

    def final_report(
        self, outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        predicted, truth = _original(outputs, targets, fitted)
        residuals = predicted - truth
        intervals = fit_conformal(np.abs(residuals))
        widths = _widths(intervals)
        scores = per_target(predicted, truth)
        report: dict[str, Any] = {name: float(values.mean()) for name, values in scores.items()}
        report["val_loss"] = _standardised_mse(outputs, targets)
        report["residual_histogram"] = residual_histogram(residuals[:, 0])
        if len(fitted.names) > 1:
            report["per_target"] = {
                name: {key: float(values[j]) for key, values in scores.items()}
                | {
                    "count": len(truth),
                    "interval_width": None if widths is None else float(widths[j]),
                    "residual_histogram": residual_histogram(residuals[:, j]),
                }
                for j, name in enumerate(fitted.names)
            }
        shown = _pick(len(truth), _MAX_PLOT_POINTS)
        report["predicted_vs_true"] = [[float(predicted[i, 0]), float(truth[i, 0])] for i in shown]
        report["intervals"] = {
            "method": intervals["method"],
            "coverage": REPORTED_COVERAGE,
            "empirical_coverage": intervals["validation_coverage"].get(f"{REPORTED_COVERAGE:g}"),
            "validation_coverage": intervals["validation_coverage"],
            "mean_width": None if widths is None else float(widths.mean()),
            "num_residuals": intervals["n"],
        }
        config = {
            "targets": list(fitted.names),
            "target_scale": fitted.info["target_scale"],
            "intervals": intervals,
            # A kept probe is ridge regression: squared error, whatever fine-tuning used.
            "loss": fitted.info.get("loss", "mse") if fitted.kept == "lp_ft" else "mse",
        }
        return report, config


def _original(
    outputs: torch.Tensor, targets: torch.Tensor, fitted: Fitted
) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, truth) [n, T] in the targets' own units."""
    scale = scale_of(fitted.info)
    width = len(scale.mean)
    return scale.restore(outputs.reshape(-1, width)), scale.restore(targets.reshape(-1, width))


def _standardised_mse(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(torch.square(outputs.double() - targets.double().reshape(outputs.shape)).mean())


def _widths(intervals: dict[str, Any]) -> np.ndarray | None:
    """Per target, the width of the REPORTED_COVERAGE interval; None when too few residuals."""
    try:
        return 2.0 * half_widths(intervals, REPORTED_COVERAGE)
    except ValueError:
        return None
