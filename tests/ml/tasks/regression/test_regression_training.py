import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import mean_squared_error, r2_score

from ml.tasks.regression.conformal import half_widths
from ml.tasks.regression.scale import TargetScale
from ml.tasks.regression.training import RegressionTraining

task = RegressionTraining()


def _dataset(targets: list[tuple[float, ...]], names: tuple[str, ...]) -> Any:
    examples = [SimpleNamespace(target=t, labels=t) for t in targets]
    return SimpleNamespace(labels=names, examples=tuple(examples))


def test_names_are_the_targets_and_encoding_is_one_column_each() -> None:
    dataset = _dataset([(1.5, 10.0), (2.0, -3.0), (0.0, 7.25)], ("price", "age"))
    names = task.names(dataset)
    assert names == ["price", "age"]
    encoded = task.encode(dataset, names)
    assert encoded.dtype == torch.float32
    assert encoded.tolist() == [[1.5, 10.0], [2.0, -3.0], [0.0, 7.25]]
    single = task.encode(_dataset([(1.0,), (2.0,)], ("y",)), ["y"])
    assert single.shape == (2, 1)
    with pytest.raises(ValueError, match="one number per target"):
        task.encode(_dataset([(1.0,), (2.0, 3.0)], ("y",)), ["y"])


def test_the_validation_split_is_seeded_and_spans_the_target_range() -> None:
    values = torch.tensor(np.random.default_rng(0).lognormal(size=(500, 2)), dtype=torch.float32)
    train, val = task.split(values, 0.2, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(500))
    assert len(val) == 100
    first = values[:, 0].numpy()
    deciles = np.quantile(first, np.linspace(0, 1, 11))
    per_decile = np.histogram(first[val], bins=deciles)[0]
    assert per_decile.tolist() == [10] * 10  # every tenth of the range, in proportion
    again = task.split(values, 0.2, seed=1)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(task.split(values, 0.2, seed=2)[1], val)


@pytest.mark.parametrize("n", [2, 3, 7, 30])
def test_small_datasets_still_get_a_validation_row(n: int) -> None:
    train, val = task.split(torch.arange(float(n))[:, None], 0.2, seed=0)
    assert len(val) >= 1 and len(train) >= 1
    assert len(np.intersect1d(train, val)) == 0


def test_mostly_tied_targets_split_too() -> None:
    values = torch.zeros(200, 1)
    values[:10] = torch.arange(1.0, 11.0)[:, None]
    _, val = task.split(values, 0.2, seed=0)
    assert abs(len(val) - 40) <= 2
    assert 1 <= int((values[val, 0] > 0).sum()) <= 3  # the rare non-zero values are shared


def test_targets_are_standardised_on_the_training_rows_and_map_back() -> None:
    raw = torch.tensor(
        np.random.default_rng(0).normal([100.0, -0.002], [25.0, 0.001], size=(64, 2)),
        dtype=torch.float32,
    )
    fitted = task.fit_targets(raw, ["a", "b"])
    assert fitted.num_outputs == 2 and fitted.names == ["a", "b"]
    standard = fitted.transform(raw)
    assert standard.dtype == torch.float32
    np.testing.assert_allclose(standard.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(standard.std(0, unbiased=False).numpy(), 1.0, atol=1e-5)
    scale = TargetScale.from_config(fitted.info["target_scale"])
    np.testing.assert_allclose(scale.restore(standard), raw.numpy(), rtol=1e-5, atol=1e-9)
    json.dumps(fitted.info, allow_nan=False)


def test_a_constant_target_is_centred_not_divided_by_zero() -> None:
    raw = torch.tensor([[5.0, 1.0], [5.0, 2.0], [5.0, 3.0]])
    fitted = task.fit_targets(raw, ["constant", "varies"])
    assert fitted.info["target_scale"]["std"][0] == 1.0
    standard = fitted.transform(torch.tensor([[5.0, 2.0], [7.0, 2.0]]))
    assert standard[:, 0].tolist() == [0.0, 2.0]


def test_losses_mse_by_default_huber_on_request() -> None:
    fitted = task.fit_targets(torch.randn(10, 1), ["y"])
    outputs = torch.tensor([[0.5], [3.0], [-0.2]])
    targets = torch.tensor([[0.0], [0.0], [0.0]])
    cpu = torch.device("cpu")
    mse = task.loss(fitted, {"loss": "auto"}, cpu)(outputs, targets)
    assert fitted.info["loss"] == "mse"
    assert float(mse) == pytest.approx((0.25 + 9.0 + 0.04) / 3)
    assert task.loss(fitted, {}, cpu)(outputs, targets) == mse
    huber = task.loss(fitted, {"loss": "huber"}, cpu)(outputs, targets)
    assert fitted.info["loss"] == "huber"
    # Quadratic within one standard deviation, linear beyond: the outlier weighs 2.5, not 9.
    assert float(huber) == pytest.approx((0.125 + 2.5 + 0.02) / 3)
    low = task.loss(fitted, {"loss": "huber"}, cpu)(outputs.bfloat16(), targets)
    assert low.dtype == torch.float32
    with pytest.raises(ValueError, match="huber"):
        task.loss(fitted, {"loss": "l1"}, cpu)


def test_the_epoch_summary_is_standardised_loss_and_original_unit_errors() -> None:
    rng = np.random.default_rng(0)
    raw = torch.tensor(rng.normal([50.0, 0.0], [10.0, 2.0], size=(40, 2)))
    fitted = task.fit_targets(raw, ["a", "b"])
    truth = fitted.transform(raw)
    outputs = truth + 0.3 * torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    summary = task.summarize(outputs, truth, fitted)
    assert set(summary) == {"val_loss", "val_mae", "val_rmse", "val_r2", "val_spearman"}
    assert summary["val_loss"] == pytest.approx(F.mse_loss(outputs, truth).item(), rel=1e-5)
    scale = TargetScale.from_config(fitted.info["target_scale"])
    predicted, actual = scale.restore(outputs), raw.numpy()
    rmse = np.sqrt(mean_squared_error(actual, predicted, multioutput="raw_values")).mean()
    assert summary["val_rmse"] == pytest.approx(rmse, rel=1e-5)
    assert summary["val_r2"] == pytest.approx(r2_score(actual, predicted), rel=1e-5)
    assert task.score(summary) == (-summary["val_loss"],)
    worse = task.summarize(outputs * 2, truth, fitted)
    assert task.score(worse) < task.score(summary)


def _linear_problem(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Features with a known linear relation to two targets in very different units; the
    relation is the same for every seed, the rows are fresh."""
    relation = np.random.default_rng(1234)
    spread, weight = relation.uniform(0.5, 2.0, size=24), relation.normal(size=(24, 2))
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 24)) * spread + 1.0
    clean = features @ weight
    noise = rng.normal(size=(n, 2)) * 0.3 * (spread[:, None] * np.abs(weight)).sum(axis=0) / 5
    raw = (clean + noise) * [1000.0, 0.01] + [2e5, 3.0]
    return torch.tensor(features, dtype=torch.float32), torch.tensor(raw), raw - noise


def test_probe_and_final_report_end_to_end() -> None:
    features, raw, _ = _linear_problem(600)
    train, val = task.split(raw, 0.25, seed=0)
    fitted = task.fit_targets(raw[train], ["price", "rate"])
    targets = fitted.transform(raw)
    fit = task.probe(features, targets, train, fitted, seed=0)
    for head in (fit.weight, fit.train_weight):
        assert head.shape == (2, 24) and head.dtype == torch.float32
    assert fit.bias.shape == fit.train_bias.shape == (2,)
    assert fit.oof.shape == (600, 2) and fit.folds == 5
    assert fit.l2 == fit.details["alpha"] in fit.details["alphas"]
    assert len(fit.details["cv_mse"]) == len(fit.details["alphas"])
    assert not torch.equal(fit.weight, fit.train_weight)
    # The head drops into a linear layer on the raw features.
    fresh_features, fresh_raw, _ = _linear_problem(2000, seed=1)
    fresh = fresh_features @ fit.weight.T + fit.bias
    assert task.summarize(fresh, fitted.transform(fresh_raw), fitted)["val_r2"] > 0.85

    metrics, config = task.final_report(fit.oof[val], targets[val], fitted)
    json.dumps([metrics, config], allow_nan=False)
    assert metrics["r2"] > 0.85 and metrics["spearman"] > 0.9
    assert set(metrics["per_target"]) == {"price", "rate"}
    price = metrics["per_target"]["price"]
    assert price["count"] == len(val)
    assert 100 < price["rmse"] < 1e4  # in the price's own units
    assert metrics["per_target"]["rate"]["rmse"] < 1.0
    assert sum(metrics["residual_histogram"]["counts"]) == len(val)
    assert len(metrics["predicted_vs_true"]) == len(val)
    intervals = metrics["intervals"]
    assert intervals["method"] == "split_conformal" and intervals["coverage"] == 0.9
    assert intervals["num_residuals"] == len(val)
    assert abs(intervals["empirical_coverage"] - 0.9) < 0.05
    assert config["targets"] == ["price", "rate"]
    assert config["target_scale"] == fitted.info["target_scale"]
    assert config["loss"] == "mse"
    # Intervals around the served head's predictions cover about 90% of fresh targets.
    q = half_widths(config["intervals"], 0.9)
    predicted = TargetScale.from_config(config["target_scale"]).restore(fresh)
    covered = np.abs(predicted - fresh_raw.numpy()) <= q
    assert abs(covered.mean() - 0.9) < 0.05
    assert intervals["mean_width"] == pytest.approx(float((2 * q).mean()))


def test_final_report_of_one_target_and_many_rows() -> None:
    rng = np.random.default_rng(0)
    truth = torch.tensor(rng.normal(size=(3000, 1)), dtype=torch.float32)
    outputs = truth + 0.5 * torch.tensor(rng.normal(size=(3000, 1)), dtype=torch.float32)
    fitted = task.fit_targets(truth * 4 + 10, ["y"])
    metrics, config = task.final_report(outputs, truth, fitted)
    assert "per_target" not in metrics
    points = metrics["predicted_vs_true"]
    assert len(points) == 1000
    scale = TargetScale.from_config(config["target_scale"])
    assert points[0] == pytest.approx(
        [scale.restore(outputs[:1])[0, 0], scale.restore(truth[:1])[0, 0]]
    )
    assert points[-1][1] == pytest.approx(scale.restore(truth[-1:])[0, 0])


def test_too_few_residuals_for_ninety_percent_leave_the_width_empty() -> None:
    truth = torch.arange(5.0)[:, None]
    fitted = task.fit_targets(truth, ["y"])
    metrics, config = task.final_report(truth + 0.1, truth, fitted)
    assert metrics["intervals"]["mean_width"] is None
    assert metrics["intervals"]["empirical_coverage"] is None
    assert config["intervals"]["n"] == 5
