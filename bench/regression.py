"""Held-out error and interval coverage of Hone's regression methods on real data, beside a
bare baseline.

Images: the Emoji Sentiment Ranking drawn from Noto Color Emoji, EfficientNet-Lite0: 300 of the
526 emojis to train on, the other 226 to test. Text: VADER's human-rated tweets, MiniLM-L6: 1,000
to train, 2,000 to test (bench/regression_data.py says what the targets are).
Each method trains through the service's own path (zip/CSV -> ingest -> run_training ->
artifact) and is scored on the test set through the serving path (load_predictor) with the
default 90% interval. The baseline, measured in the same run, is what a practitioner would
write by hand: frozen features from the same backbone (mean-pooled for text), as they are and
standardised, + scikit-learn RidgeCV (leave-one-out alpha) on standardised targets, fitted on
every training example; its 90% interval is split-conformal on those leave-one-out residuals.
Ratios are to the better of the two baselines.

    python -m bench.regression                # the full run (~16 min on 2 busy CPU cores)
    python -m bench.regression --quick        # smoke run (~3 min; 2 fine-tuning epochs)
    python -m bench.regression --methods ""   # the baselines alone
"""

import argparse
import json
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.accuracy import _batch_size, _batches, _methods, frozen_features
from bench.common import (
    add_run_arguments,
    ingest_regression_upload,
    load_average,
    machine_description,
    markdown_table,
    quiet_libraries,
    train_fresh,
)
from bench.regression_data import Inputs, RegressionSet, image_set, text_set
from ml.backbones.catalog import load_catalog
from ml.backbones.spec import BackboneSpec
from ml.device import configure_threads, pick_device
from ml.inference.predictor import load_predictor
from ml.tasks import PredictOptions
from ml.tasks.regression.conformal import fit_conformal, half_widths
from ml.training.spec import Method

COVERAGE = 0.9
COVERAGE_GOAL = (0.88, 0.92)
RIDGE_ALPHAS = np.logspace(-2, 5, 29)


@dataclass
class Row:
    data: str
    method: str
    kept: str  # what the job kept (auto chooses), or "-" for the baseline
    test_n: int
    calibration_n: int  # held-out residuals the interval was fitted on
    rmse: float
    r2: float
    coverage: float  # share of test targets inside the 90% interval
    width: float  # mean interval width, in the target's units
    rmse_ratio: float  # this RMSE / the best baseline's (below 1: better)
    val_rmse: float | None  # the service's own validation estimate
    train_s: float
    predict_s: float

    def cells(self) -> list[str]:
        val = "-" if self.val_rmse is None else f"{self.val_rmse:.4f}"
        band = coverage_band(self.test_n, self.calibration_n)
        return [
            self.data, self.method, self.kept, f"{self.rmse:.4f}", f"{self.r2:.3f}",
            f"{self.rmse_ratio:.3f}", f"{self.coverage:.3f} ±{band:.3f}",
            f"{self.width:.3f}", str(self.calibration_n), val, f"{self.train_s:.0f}",
            f"{self.predict_s:.1f}",
        ]  # fmt: skip


@dataclass
class Scores:
    rmse: float
    r2: float
    coverage: float
    width: float


def score(truth: Sequence[float], values: np.ndarray, intervals: np.ndarray) -> Scores:
    """Test RMSE, R², and the share of targets inside their interval [lo, hi] with its width."""
    y = np.asarray(truth, dtype=np.float64)
    error = float(np.sqrt(np.mean((values - y) ** 2)))
    r2 = 1.0 - float(np.sum((values - y) ** 2) / np.sum((y - y.mean()) ** 2))
    inside = (intervals[:, 0] <= y) & (y <= intervals[:, 1])
    width = float(np.mean(intervals[:, 1] - intervals[:, 0]))
    return Scores(error, r2, float(inside.mean()), width)


@dataclass
class RidgeFit:
    model: Pipeline
    alpha: float
    half_width: float  # of the interval at the coverage asked for
    fit_seconds: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(features), dtype=np.float64)


def ridge_baseline(
    features: np.ndarray, targets: np.ndarray, coverage: float, *, scale_features: bool
) -> RidgeFit:
    """RidgeCV on standardised targets (features standardised too, or as the backbone gives
    them), alpha by leave-one-out; the interval is split-conformal on the leave-one-out
    residuals at that alpha."""
    started = time.perf_counter()
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, store_cv_results=True)
    head = TransformedTargetRegressor(regressor=ridge, transformer=StandardScaler())
    steps = [StandardScaler(), head] if scale_features else [head]
    model = make_pipeline(*steps).fit(features, targets)
    fitted: RidgeCV = head.regressor_
    column = int(np.argmin(np.abs(RIDGE_ALPHAS - fitted.alpha_)))
    # Squared leave-one-out errors in standardised units, back in the target's own.
    residuals = np.sqrt(fitted.cv_results_[:, column]) * float(head.transformer_.scale_[0])
    half_width = float(half_widths(fit_conformal(residuals[:, None]), coverage)[0])
    return RidgeFit(model, float(fitted.alpha_), half_width, time.perf_counter() - started)


def served_predictions(
    artifact_dir: Path, inputs: Inputs, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(values [n], intervals [n, 2]) through the serving path at the default coverage."""
    predictor = load_predictor(artifact_dir, device=device.type)
    options = PredictOptions(coverage=COVERAGE)
    values, intervals = [], []
    for batch in _batches(inputs, _batch_size(predictor.modality, device)):
        for prediction in predictor.predict(batch, options):
            values.append(prediction["value"])
            intervals.append(prediction["interval"])
    return np.asarray(values, dtype=np.float64), np.asarray(intervals, dtype=np.float64)


BASELINES = {
    # Pooled features vary in scale by orders of magnitude between dimensions; standardising
    # them is the textbook step, but it also blows up near-constant ones, so both are run.
    "baseline: features + RidgeCV": False,
    "baseline: standardised features + RidgeCV": True,
}


def baseline_rows(
    data: RegressionSet, spec: BackboneSpec, device: torch.device, out: Path
) -> list[Row]:
    """One row per baseline; each RMSE ratio is to the best of them."""
    started = time.perf_counter()
    train_x = frozen_features(spec, data.train_inputs, 1, device, out / "cache")
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    test_x = frozen_features(spec, data.test_inputs, 1, device, out / "cache")
    test_features_s = time.perf_counter() - started
    rows = []
    for name, scale_features in BASELINES.items():
        fit = ridge_baseline(
            train_x, np.asarray(data.train_targets), COVERAGE, scale_features=scale_features
        )
        started = time.perf_counter()
        values = fit.predict(test_x)
        predict_s = test_features_s + time.perf_counter() - started
        intervals = np.stack([values - fit.half_width, values + fit.half_width], axis=1)
        s = score(data.test_targets, values, intervals)
        rows.append(Row(
            data.name, f"{name} (alpha {fit.alpha:.3g})", "-", len(data.test_targets),
            len(data.train_targets), s.rmse, s.r2, s.coverage, s.width, 1.0, None,
            features_s + fit.fit_seconds, predict_s,
        ))  # fmt: skip
    best = min(row.rmse for row in rows)
    for row in rows:
        row.rmse_ratio = row.rmse / best
    return rows


def service_row(
    data: RegressionSet,
    dataset_dir: Path,
    spec: BackboneSpec,
    method: Method,
    baseline_rmse: float,
    device: torch.device,
    out: Path,
    options: argparse.Namespace,
) -> Row:
    root = out / f"{data.name}-{method}"
    trained = train_fresh(
        dataset_dir, spec, method, root, epochs=options.epochs, device=device.type,
        verbose=options.verbose,
    )  # fmt: skip
    started = time.perf_counter()
    values, intervals = served_predictions(trained.artifact_dir, data.test_inputs, device)
    predict_s = time.perf_counter() - started
    s = score(data.test_targets, values, intervals)
    val_rmse = trained.outcome.metrics.get("rmse")  # the kept model's, on validation
    calibration_n = int(trained.outcome.task_config["intervals"]["n"])
    return Row(
        data.name, method, trained.outcome.method, len(data.test_targets), calibration_n,
        s.rmse, s.r2, s.coverage, s.width, s.rmse / baseline_rmse,
        None if val_rmse is None else float(val_rmse),
        trained.train_seconds + trained.save_seconds, predict_s,
    )  # fmt: skip


def run_set(
    data: RegressionSet,
    methods: Sequence[Method],
    device: torch.device,
    out: Path,
    options: argparse.Namespace,
) -> Iterator[Row]:
    """The baseline row, then one row per method, each as soon as it is measured."""
    spec = load_catalog()[data.backbone]
    print(
        f"{data.name}: {len(data.train_targets)} train / {len(data.test_targets)} test, {spec.id}",
        flush=True,
    )
    baselines = baseline_rows(data, spec, device, out)
    yield from baselines
    if not methods:
        return
    best = min(row.rmse for row in baselines)
    started = time.perf_counter()
    dataset = ingest_regression_upload(data.upload, data.task, out)
    print(f"  ingest {time.perf_counter() - started:.2f} s", flush=True)
    for method in methods:
        yield service_row(data, dataset.path, spec, method, best, device, out, options)


def coverage_band(test_n: int, calibration_n: int, coverage: float = COVERAGE) -> float:
    """Two standard errors of a correct split-conformal interval's empirical test coverage:
    how far it strays from ``coverage`` by chance alone. Both draws count: the test targets
    (binomial) and the ``calibration_n`` residuals the interval came from (its coverage given
    them is Beta-distributed, variance about c(1 - c) / calibration_n)."""
    variance = coverage * (1.0 - coverage) * (1.0 / test_n + 1.0 / calibration_n)
    return 2.0 * math.sqrt(variance)


def verdict(rows: Sequence[Row]) -> str:
    """Per data set: each method's RMSE ratio to the best baseline (matching: within 2%),
    whether its test coverage is in the goal, and, where not, whether chance alone explains
    the miss (see ``coverage_band``)."""
    parts = []
    low, high = COVERAGE_GOAL
    for row in (r for r in rows if r.kept != "-"):
        error = (
            "beats" if row.rmse_ratio < 0.98 else
            "matches" if row.rmse_ratio <= 1.02 else "does NOT match"
        )  # fmt: skip
        band = coverage_band(row.test_n, row.calibration_n)
        covered = (
            "in" if low <= row.coverage <= high else
            f"outside (within chance, ±{band:.3f})" if abs(row.coverage - COVERAGE) <= band else
            f"OUTSIDE (beyond chance, ±{band:.3f})"
        )  # fmt: skip
        parts.append(
            f"{row.data} {row.method}: RMSE x{row.rmse_ratio:.3f} ({error} the best baseline), "
            f"coverage {row.coverage:.3f} {covered} {low}-{high}"
        )
    return "verdict: " + "; ".join(parts)


def render(rows: Sequence[Row]) -> str:
    headers = [
        "data", "method", "kept", "test RMSE", "test R²", "RMSE / baseline",
        "90% coverage ± chance", "mean width", "residuals", "val RMSE", "train s",
        "predict s",
    ]  # fmt: skip
    return markdown_table(headers, [row.cells() for row in rows])


def results_markdown(rows: Sequence[Row], sets: Sequence[RegressionSet], heading: str) -> str:
    """The bench/RESULTS.md section: the targets, the table, the verdict."""
    lines = [f"## Regression ({heading})", ""]
    for data in sets:
        lines.append(
            f"- {data.name}: target = {data.target}; {len(data.train_targets)} train / "
            f"{len(data.test_targets)} test, {data.backbone}."
        )
    lines += [
        "",
        "± chance: two standard errors of a correct 90% interval's test coverage, from the "
        "test set's size and the number of held-out residuals the interval was fitted on.",
        "",
        render(rows),
        "",
        verdict(rows),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(
        parser,
        Path("bench/out/regression"),
        'comma-separated training methods ("" = the baseline alone)',
    )
    parser.add_argument("--image-train", type=int, help="training emojis (300)")
    parser.add_argument("--image-test", type=int, help="test emojis (all the others)")
    parser.add_argument("--text-train", type=int, help="training tweets (1000)")
    parser.add_argument("--text-test", type=int, help="test tweets (2000)")
    args = parser.parse_args()
    quick = args.quick
    image_train = args.image_train or (150 if quick else 300)
    image_test = args.image_test or (150 if quick else None)
    text_train = args.text_train or (200 if quick else 1000)
    text_test = args.text_test or (300 if quick else 2000)
    methods = _methods(args.methods) if args.methods else []
    if quick and args.epochs is None:
        args.epochs = 2
    device = pick_device(args.device)
    configure_threads()
    quiet_libraries()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    heading = f"{machine_description()}; {load_average()}"
    print(heading, flush=True)

    started = time.perf_counter()
    makers = []
    if args.modality in ("image", "both"):
        makers.append(lambda: image_set(image_train, image_test, args.seed, args.out))
    if args.modality in ("text", "both"):
        makers.append(lambda: text_set(text_train, text_test, args.seed, args.out))
    rows: list[Row] = []
    sets = []
    for make in makers:
        sets.append(make())
        for row in run_set(sets[-1], methods, device, args.out, args):
            rows.append(row)
            print(
                f"  {row.method}: RMSE {row.rmse:.4f}, R² {row.r2:.3f}, "
                f"coverage {row.coverage:.3f} ({row.train_s:.0f} s)",
                flush=True,
            )
            # Kept current, so a long run that is cut short still leaves what it measured.
            (args.out / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    markdown = results_markdown(rows, sets, heading)
    (args.out / "results-table.txt").write_text(markdown + "\n")
    print()
    print(markdown)
    print(f"total {time.perf_counter() - started:.0f} s; at the end {load_average()}")


if __name__ == "__main__":
    main()
