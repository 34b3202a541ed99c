"""Regression through the engine on tiny backbones: every method trains, reports honest
metrics and intervals, and the artifact serves values with the intervals it was calibrated for."""

import io
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ml.artifacts import save_artifact
from ml.inference.predictor import load_predictor
from ml.tasks import PredictOptions
from ml.training.run import run_training
from tests.ml.training.conftest import FILLER, MakeSpec, Recorder, write_stored


def write_regression_dataset(
    root: Path, task: str, names: Sequence[str], rows: Sequence[tuple[Sequence[float], Any]]
) -> Path:
    """A stored regression dataset as ingest writes it."""
    header = {"multilabel": False, "targets": list(names)}
    return write_stored(
        root, task, header, [({"target": [float(t) for t in y]}, x) for y, x in rows]
    )


def square_png(side: int, rng: random.Random) -> bytes:
    """A bright square of `side` pixels on grey noise: its area is the target."""
    size = 40
    pixels = np.asarray(
        [[[rng.randint(90, 160)] * 3 for _ in range(size)] for _ in range(size)], dtype=np.uint8
    )
    top, left = rng.randint(0, size - side), rng.randint(0, size - side)
    pixels[top : top + side, left : left + side] = (240, 240, 240)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def square_rows(n: int, seed: int = 0) -> list[tuple[Sequence[float], Any]]:
    rng = random.Random(seed)
    rows: list[tuple[Sequence[float], Any]] = []
    for _ in range(n):
        side = rng.randint(6, 34)
        rows.append(([side * side / 100.0], square_png(side, rng)))
    return rows


def counting_rows(n: int, seed: int = 0) -> list[tuple[Sequence[float], Any]]:
    """Texts with k 'pizza's among filler words: the targets are k and the length in words."""
    rng = random.Random(seed)
    rows: list[tuple[Sequence[float], Any]] = []
    for _ in range(n):
        k = rng.randint(0, 6)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))] + ["pizza"] * k
        rng.shuffle(words)
        rows.append(([k, len(words)], " ".join(words)))
    return rows


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    return write_regression_dataset(root, "image_regression", ["area"], square_rows(80))


@pytest.mark.parametrize("method", ["linear_probe", "full", "auto"])
def test_every_method_learns_image_regression(
    squares: Path, make_spec: MakeSpec, method: str, tmp_path: Path
) -> None:
    hooks = Recorder()
    hp = {"image_size": 32, "batch_size": 16, "epochs": 3}
    outcome = run_training(make_spec(squares, method=method, hyperparameters=hp), hooks)

    metrics = outcome.metrics
    assert outcome.task == "image_regression" and outcome.labels == ["area"]
    assert metrics["r2"] > 0.3, metrics  # a constant prediction scores 0
    assert metrics["rmse"] >= metrics["mae"] > 0
    coverage = metrics["intervals"]["empirical_coverage"]
    assert 0.6 <= coverage <= 1.0
    if outcome.method in ("linear_probe", "classical"):
        # Out-of-fold outputs of every example: honest, and four times the validation split.
        assert metrics["evaluated_on"]["split"] == "out_of_fold"
        assert metrics["evaluated_on"]["examples"] == 80
    else:
        assert metrics["evaluated_on"] == {"split": "validation", "examples": metrics["num_val"]}
    config = outcome.task_config
    assert config["targets"] == ["area"] and config["loss"] == "mse"
    assert config["target_scale"]["std"][0] > 0

    artifact = tmp_path / "artifact"
    save_artifact(artifact, outcome.model, outcome.artifact_config(make_spec(squares).backbone, {}))
    predictor = load_predictor(artifact)
    rng = random.Random(7)
    sides = [8, 20, 32]
    batch = predictor.preprocess([square_png(side, rng) for side in sides])
    values = predictor.postprocess(predictor.forward(batch))
    answers = predictor.format(values, PredictOptions(coverage=0.8))
    assert [set(a) for a in answers] == [{"value", "interval", "coverage"}] * 3
    for answer in answers:
        low, high = answer["interval"]
        assert low <= answer["value"] <= high and answer["coverage"] == 0.8
    if metrics["r2"] > 0.6:
        assert answers[0]["value"] < answers[2]["value"]  # a bigger square, a bigger area


def test_text_regression_with_two_targets(tmp_path: Path, make_spec: MakeSpec) -> None:
    dataset = write_regression_dataset(
        tmp_path, "text_regression", ["pizzas", "words"], counting_rows(90)
    )
    outcome = run_training(make_spec(dataset, "text", method="linear_probe"), Recorder())

    per_target = outcome.metrics["per_target"]
    assert set(per_target) == {"pizzas", "words"}
    assert per_target["pizzas"]["r2"] > 0.3, per_target
    assert len(outcome.task_config["intervals"]["abs_residuals"]) == 2


def test_huber_loss_is_a_hyperparameter_of_regression(squares: Path, make_spec: MakeSpec) -> None:
    hp = {"image_size": 32, "batch_size": 16, "epochs": 1, "loss": "huber"}
    outcome = run_training(make_spec(squares, method="full", hyperparameters=hp), Recorder())
    assert outcome.hyperparameters["loss"] == "huber"
    assert outcome.task_config["loss"] == "huber"
