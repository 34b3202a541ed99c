"""The engine end to end on tiny random backbones and tiny learnable datasets (CPU, seconds)."""

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from ml.artifacts import load_artifact, save_artifact
from ml.training import images, run
from ml.training.run import run_training
from tests.ml.training.conftest import (
    MakeSpec,
    Recorder,
    image_rows,
    multilabel_image_rows,
    text_rows,
    write_dataset,
)

METRIC_KEYS = {"epoch", "train_loss", "val_loss", "val_accuracy", "val_macro_f1"}


def test_linear_probe_learns_images(image_dataset: Path, make_spec: MakeSpec) -> None:
    hooks = Recorder()
    outcome = run_training(make_spec(image_dataset, method="linear_probe"), hooks)

    assert outcome.method == "linear_probe"
    assert outcome.metrics["accuracy"] >= 0.9  # chance is 1/3
    assert outcome.metrics["num_train"] + outcome.metrics["num_val"] == 60
    assert outcome.labels == ["blue", "green", "red"]
    assert len(outcome.metrics["confusion_matrix"]) == 3
    assert set(outcome.metrics["per_label"]) == {"blue", "green", "red"}
    assert outcome.hyperparameters["image_size"] == 32
    assert outcome.hyperparameters["probe_l2"] > 0
    assert outcome.preprocessing["input_size"] == [3, 32, 32]
    assert outcome.resumed_from_step is None
    assert not outcome.model.training
    assert hooks.of("info")[-1]["data"]["method"] == "linear_probe"
    json.dumps(outcome.metrics)  # stored in the registry as JSON


def phases_at(hooks: Recorder) -> dict[str, int]:
    """Each phase event's position among the events, in the order they came."""
    return {
        e["data"]["phase"]: i for i, e in enumerate(hooks.events) if "phase" in (e["data"] or {})
    }


def test_the_start_of_a_job_is_timed_phase_by_phase(
    text_dataset: Path, make_spec: MakeSpec
) -> None:
    """What a user reads to see where the time before training went (and what
    bench/job_latency.py measures): load, preparation, features, then the first step."""
    hooks = Recorder()
    run_training(make_spec(text_dataset, "text", method="full"), hooks)

    assert list(phases_at(hooks)) == ["model_load", "data_preparation", "features", "first_step"]
    timed = [e for e in hooks.events if "seconds" in (e["data"] or {})]
    assert all(e["data"]["seconds"] >= 0 and " s" in e["message"] for e in timed)
    # The first optimizer step precedes every fine-tuning epoch's metrics.
    first_step = phases_at(hooks)["first_step"]
    epochs = [i for i, e in enumerate(hooks.events) if e["type"] == "metrics"]
    assert epochs and min(epochs) > first_step


def test_full_fine_tune_learns_images_and_reports_each_epoch(
    image_dataset: Path, make_spec: MakeSpec
) -> None:
    hooks = Recorder()
    spec = make_spec(
        image_dataset,
        method="full",
        hyperparameters={
            "image_size": 32,
            "batch_size": 16,
            "epochs": 3,
        },
    )
    outcome = run_training(spec, hooks)

    assert outcome.method == "lp_ft"
    assert "LP-FT" in outcome.method_reason
    assert outcome.metrics["accuracy"] >= 0.9
    epochs = [e for e in hooks.of(type="metrics") if e["data"].get("method") != "linear_probe"]
    assert [e["data"]["epoch"] for e in epochs] == [1, 2, 3]
    assert all(set(e["data"]) >= METRIC_KEYS for e in epochs)
    assert hooks.progress_calls, "progress is reported at least at every epoch end"
    last = hooks.progress_calls[-1]
    assert last["epochs"] == 3 and last["total_steps"] == 3 * (48 // 16)
    assert last["eta_seconds"] is not None
    assert (spec.work_dir / "checkpoint").is_dir()


def test_full_fine_tune_learns_text(text_dataset: Path, make_spec: MakeSpec) -> None:
    spec = make_spec(text_dataset, "text", method="full")
    outcome = run_training(spec, Recorder())
    assert outcome.method == "lp_ft"
    assert outcome.metrics["accuracy"] >= 0.9
    assert outcome.tokenizer is not None
    assert outcome.model.config.id2label == {0: "food", 1: "sport", 2: "tech"}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def noisy_text_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15% of the labels are random: the probe cannot be perfect, so auto has to decide."""
    rows = text_rows(30, noise=0.15)
    return write_dataset(tmp_path_factory.mktemp("ds"), "text_classification", rows)


@pytest.fixture(scope="module")
def noisy_image_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Squares with 15% of the labels swapped at random: no probe is perfect on them."""
    rng = random.Random(1)
    labels = sorted({label for (label,), _ in image_rows(per_class=1)})
    rows = [
        ([rng.choice(labels)] if rng.random() < 0.15 else [label], image)
        for (label,), image in image_rows(per_class=20)
    ]
    return write_dataset(tmp_path_factory.mktemp("ds"), "image_classification", rows)


def test_auto_is_never_worse_than_the_probe_on_validation(
    noisy_text_dataset: Path, make_spec: MakeSpec
) -> None:
    hooks = Recorder()
    outcome = run_training(make_spec(noisy_text_dataset, "text"), hooks)

    probe = outcome.metrics["linear_probe"]
    assert probe["val_macro_f1"] < 1.0
    assert outcome.metrics["epochs"], "fine-tuning ran"
    assert outcome.metrics["macro_f1"] >= probe["val_macro_f1"]
    # Every candidate was scored on validation, and the kept one is the best there.
    candidates = {c["name"]: c for c in outcome.metrics["candidates"]}
    assert list(candidates) == ["classical", "linear_probe", "lp_ft"]
    assert candidates[outcome.method]["status"] == "kept"
    kept_f1 = candidates[outcome.method]["validation"]["val_macro_f1"]
    assert all(c["validation"]["val_macro_f1"] <= kept_f1 for c in candidates.values())
    assert all(c["seconds"] > 0 for c in candidates.values())
    assert hooks.of("info")[-1]["data"] == {
        "method": outcome.method,
        "reason": outcome.method_reason,
    }


def test_auto_abandons_fine_tuning_that_is_clearly_losing(
    noisy_text_dataset: Path, make_spec: MakeSpec
) -> None:
    hooks = Recorder()
    # A learning rate this high wrecks the pretrained weights within an epoch; patience alone
    # would let it run all ten epochs.
    hp = {"batch_size": 16, "learning_rate": 0.5, "patience": 10, "epochs": 10}
    outcome = run_training(make_spec(noisy_text_dataset, "text", hyperparameters=hp), hooks)

    candidates = {c["name"]: c for c in outcome.metrics["candidates"]}
    tuned = candidates["lp_ft"]
    assert tuned["status"] == "abandoned"
    assert "below the" in tuned["reason"] and "standard errors" in tuned["reason"]
    assert len(outcome.metrics["epochs"]) == 2  # the first epoch cannot show a trend
    assert outcome.method in {"classical", "linear_probe"}
    assert "lp_ft abandoned" in outcome.method_reason
    # The kept candidate is measured out of fold on every example, as its candidate reported.
    assert outcome.metrics["evaluated_on"] == {"split": "out_of_fold", "examples": 90, "folds": 5}
    kept = candidates[outcome.method]["validation"]
    assert outcome.metrics["linear_probe"]["val_macro_f1"] <= kept["val_macro_f1"]


def test_auto_skips_fine_tuning_when_the_probe_is_perfect(
    image_dataset: Path, make_spec: MakeSpec
) -> None:
    outcome = run_training(make_spec(image_dataset), Recorder())
    assert outcome.metrics["linear_probe"]["val_macro_f1"] == 1.0
    # The cheaper classical model is kept when it is within the noise of the perfect probe.
    assert outcome.method in {"classical", "linear_probe"}
    assert "lp_ft skipped: the linear_probe is already perfect" in outcome.method_reason
    assert outcome.metrics["epochs"] == []


@pytest.fixture(scope="module")
def multilabel_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = multilabel_image_rows(120)
    return write_dataset(
        tmp_path_factory.mktemp("ds"), "image_classification", rows, multilabel=True
    )


@pytest.mark.parametrize("method", ["linear_probe", "full"])
def test_multilabel_learns_per_label_thresholds(
    method: str, multilabel_dataset: Path, make_spec: MakeSpec
) -> None:
    hp = {"image_size": 32, "batch_size": 16, "epochs": 2}
    outcome = run_training(
        make_spec(multilabel_dataset, method=method, hyperparameters=hp), Recorder()
    )

    assert outcome.task_config["multilabel"]
    assert outcome.method == ("linear_probe" if method == "linear_probe" else "lp_ft")
    assert (thresholds := outcome.task_config["thresholds"]) is not None and len(thresholds) == 3
    assert all(0.0 < t < 1.0 for t in thresholds)
    assert outcome.metrics["macro_f1"] >= 0.8
    assert {"micro_f1", "subset_accuracy"} <= set(outcome.metrics)
    assert "confusion_matrix" not in outcome.metrics


def test_imbalanced_labels_are_weighted_and_warned(tmp_path: Path, make_spec: MakeSpec) -> None:
    rows = text_rows(0, counts={"food": 60, "sport": 15, "tech": 15})
    dataset = write_dataset(tmp_path, "text_classification", rows)
    hooks = Recorder()
    outcome = run_training(make_spec(dataset, "text", method="linear_probe"), hooks)

    assert outcome.metrics["accuracy"] >= 0.8
    assert outcome.class_weights is not None
    food, sport, tech = outcome.class_weights
    assert sport == pytest.approx(tech) and sport > 3 * food
    warned = [e for e in hooks.of("warn") if "imbalanced" in e["message"]]
    assert warned and warned[0]["data"]["class_weights"]["food"] == pytest.approx(food)


def test_a_given_validation_dataset_replaces_the_split(
    tmp_path: Path, image_dataset: Path, make_spec: MakeSpec
) -> None:
    validation = write_dataset(tmp_path, "image_classification", image_rows(2, seed=9))
    hooks = Recorder()
    outcome = run_training(
        make_spec(image_dataset, method="linear_probe", validation_dataset_dir=validation), hooks
    )
    assert outcome.metrics["num_train"] == 60
    assert outcome.metrics["num_val"] == 6
    assert any("only 6 examples" in e["message"] for e in hooks.of("warn"))


def test_decoded_images_and_features_are_reused_by_the_next_job(
    tmp_path: Path, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = write_dataset(tmp_path, "image_classification", image_rows(5, seed=4))
    first = Recorder()
    run_training(make_spec(dataset, method="linear_probe"), first)
    assert any("computing frozen features" in e["message"] for e in first.events)

    def no_decoding(*args: object) -> None:
        raise AssertionError("an image was decoded again")

    monkeypatch.setattr(images, "_decode", no_decoding)
    second = Recorder()
    run_training(make_spec(dataset, method="linear_probe"), second)
    assert not any("computing frozen features" in e["message"] for e in second.events)


@pytest.mark.parametrize("backbone", ["image", "text"])
def test_outcome_round_trips_through_an_artifact(
    backbone: str,
    image_dataset: Path,
    text_dataset: Path,
    tmp_path: Path,
    make_spec: MakeSpec,
) -> None:
    dataset = image_dataset if backbone == "image" else text_dataset
    spec = make_spec(dataset, backbone, method="linear_probe")
    outcome = run_training(spec, Recorder())
    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    save_artifact(tmp_path / "model", outcome.model, config, outcome.tokenizer)

    loaded = load_artifact(tmp_path / "model")
    assert loaded.config["labels"] == outcome.labels
    assert loaded.config["temperature"] == outcome.task_config["temperature"]
    assert loaded.config["method"] == "linear_probe"
    assert loaded.config["backbone"]["weights_sha256"] == outcome.backbone_weights_sha256
    if backbone == "image":
        assert loaded.config["preprocessing"]["input_size"] == [3, 32, 32]
        batch: dict[str, torch.Tensor] = {"x": torch.randn(4, 3, 32, 32)}
        run = lambda model: model(batch["x"])  # noqa: E731
    else:
        assert loaded.config["preprocessing"] == {"max_length": 32}
        assert loaded.tokenizer is not None
        batch = dict(
            loaded.tokenizer(["pizza today", "tennis match"], padding=True, return_tensors="pt")
        )
        run = lambda model: model(**batch).logits  # noqa: E731
    with torch.no_grad():
        assert torch.equal(run(outcome.model), run(loaded.model))


def test_max_length_is_capped_at_what_the_backbone_reads(
    text_dataset: Path, make_spec: MakeSpec
) -> None:
    hooks = Recorder()
    hp = {"batch_size": 16, "max_length": 512}  # the tiny BERT has 64 positions
    outcome = run_training(
        make_spec(text_dataset, "text", method="linear_probe", hyperparameters=hp), hooks
    )
    assert outcome.preprocessing == {"max_length": 64}
    assert outcome.hyperparameters["max_length"] == 64
    assert any("max_length 512" in e["message"] for e in hooks.of("warn"))


class _FastClock:
    """Time that passes `step` seconds each time anyone looks at it."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_tiny_budget_keeps_a_probe_and_says_so(
    noisy_text_dataset: Path, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ml.training.search.now", _FastClock(step=100.0))
    hp = {"time_budget_seconds": 60}
    outcome = run_training(make_spec(noisy_text_dataset, "text", hyperparameters=hp), Recorder())

    tuned = next(c for c in outcome.metrics["candidates"] if c["name"] == "lp_ft")
    assert tuned["status"] == "skipped"
    # An epoch estimated from the probe's measured speed does not fit (or, with the features
    # cached by an earlier job, the budget has run out by the time fine-tuning would start).
    assert "the time budget (60 s)" in tuned["reason"]
    assert outcome.method in {"classical", "linear_probe"}
    assert f"lp_ft skipped: {tuned['reason']}" in outcome.method_reason
    assert outcome.metrics["epochs"] == []


def test_a_budget_running_out_mid_epoch_still_ends_with_a_model(
    noisy_text_dataset: Path, make_spec: MakeSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One second per look: the candidates before fine-tuning look a few times, then every
    # training step does, so the 20 s run out within the first epochs.
    monkeypatch.setattr("ml.training.search.now", _FastClock(step=1.0))
    hp = {"time_budget_seconds": 20, "batch_size": 4, "epochs": 10, "patience": 10}
    outcome = run_training(make_spec(noisy_text_dataset, "text", hyperparameters=hp), Recorder())

    tuned = next(c for c in outcome.metrics["candidates"] if c["name"] == "lp_ft")
    assert "the time budget (20 s) ran out in epoch" in tuned["reason"]
    assert 1 <= len(outcome.metrics["epochs"]) < 10
    assert tuned["validation"]  # what it had when time ran out was validated and compared
    assert outcome.model is not None and outcome.metrics["macro_f1"] > 0


class _UselessFeatures:
    """A classical featurizer that sees nothing (constant features), so the probe must win."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.scale_features = True

    def features(self, dataset: Any) -> torch.Tensor:
        return torch.zeros(len(dataset.examples), 4)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("backbone", ["image", "text"])
def test_a_probe_kept_after_fine_tuning_serves_the_probe_itself(
    backbone: str,
    noisy_text_dataset: Path,
    noisy_image_dataset: Path,
    make_spec: MakeSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = run.classical_candidate
    monkeypatch.setattr(run, "classical_candidate", lambda *a: _UselessFeatures(real(*a)))
    dataset = noisy_text_dataset if backbone == "text" else noisy_image_dataset
    # Fine-tuning wrecked by a huge learning rate: it runs, loses, and the probe is kept.
    hp = {"batch_size": 16, "learning_rate": 0.5, "epochs": 3, "patience": 3}
    outcome = run_training(make_spec(dataset, backbone, hyperparameters=hp), Recorder())
    assert outcome.method == "linear_probe"
    assert outcome.metrics["epochs"], "fine-tuning ran before the probe was kept"
    probe_only = run_training(
        make_spec(dataset, backbone, method="linear_probe", hyperparameters=hp), Recorder()
    )
    assert outcome.preprocessing == probe_only.preprocessing
    torch.testing.assert_close(outcome.model.state_dict(), probe_only.model.state_dict())
