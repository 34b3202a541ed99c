from dataclasses import replace

import pytest

from ml.backbones.spec import BackboneSpec
from ml.training.hparams import resolve_hyperparameters, validate_hyperparameters


def test_valid_values_and_auto_pass() -> None:
    hp = {
        "epochs": 3,
        "batch_size": 512,
        "learning_rate": 1,
        "warmup_ratio": 0.5,
        "weight_decay": 0,
        "patience": "auto",
        "max_length": 8,
        "image_size": 1024,
        "label_smoothing": 0.0,
        "freeze_batchnorm": False,
    }
    assert validate_hyperparameters(hp) == []
    assert validate_hyperparameters({name: "auto" for name in hp}) == []


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("epochs", 0, "[1, 100]"),
        ("epochs", 101, "[1, 100]"),
        ("epochs", 2.5, "integer"),
        ("epochs", True, "number"),
        ("batch_size", 513, "[1, 512]"),
        ("learning_rate", 0, "(0, 1]"),
        ("learning_rate", 1.5, "(0, 1]"),
        ("learning_rate", float("nan"), "finite"),
        ("learning_rate", "fast", "number"),
        ("warmup_ratio", 0.6, "[0, 0.5]"),
        ("weight_decay", -0.1, "[0, 1]"),
        ("patience", 51, "[1, 50]"),
        ("max_length", 4, "[8, 512]"),
        ("image_size", 16, "[32, 1024]"),
        ("label_smoothing", 0.5, "[0, 0.5)"),
        ("freeze_batchnorm", 1, "true, false"),
    ],
)
def test_bad_values_are_reported_per_field(name: str, value: object, fragment: str) -> None:
    errors = validate_hyperparameters(
        {name: value, "epochs": 3} if name != "epochs" else {name: value}
    )
    assert len(errors) == 1
    field, message = errors[0]
    assert field == name
    assert fragment in message


def test_unknown_keys_are_errors() -> None:
    assert [f for f, _ in validate_hyperparameters({"epochz": 3, "lr": 0.1})] == ["epochz", "lr"]


def test_resolution_fills_auto_from_data_and_backbone(backbones: dict[str, BackboneSpec]) -> None:
    image, text = backbones["image"], backbones["text"]
    small = resolve_hyperparameters({}, method="auto", num_train=100, backbone=image, device="cpu")
    assert small["batch_size"] == 32
    assert small["image_size"] == image.input_size
    assert small["freeze_batchnorm"] is True
    assert "max_length" not in small
    # Few steps per epoch: more epochs, within bounds.
    large = resolve_hyperparameters(
        {}, method="auto", num_train=50_000, backbone=image, device="cuda"
    )
    assert large["batch_size"] == 64
    assert large["epochs"] < small["epochs"]
    assert large["freeze_batchnorm"] is False

    tiny = resolve_hyperparameters({}, method="full", num_train=5, backbone=text, device="cpu")
    assert tiny["batch_size"] == 5  # never more than the data
    assert tiny["max_length"] == text.max_length  # the backbone's own limit (32) is below 128
    minilm = replace(text, max_length=512, num_params=100_000_000)
    resolved = resolve_hyperparameters(
        {}, method="full", num_train=500, backbone=minilm, device="cpu"
    )
    assert resolved["max_length"] == 128
    assert resolved["learning_rate"] < tiny["learning_rate"]  # gentler for a large backbone
    assert "image_size" not in resolved


def test_given_values_win_and_other_modality_is_dropped(
    backbones: dict[str, BackboneSpec],
) -> None:
    hp = {"epochs": 7, "learning_rate": "auto", "max_length": 64, "image_size": 48}
    resolved = resolve_hyperparameters(
        hp, method="full", num_train=200, backbone=backbones["image"], device="cpu"
    )
    assert resolved["epochs"] == 7
    assert resolved["image_size"] == 48
    assert isinstance(resolved["learning_rate"], float)
    assert "max_length" not in resolved
    assert all(value != "auto" for value in resolved.values())


def test_linear_probe_keeps_only_what_it_uses(backbones: dict[str, BackboneSpec]) -> None:
    resolved = resolve_hyperparameters(
        {"epochs": 5},
        method="linear_probe",
        num_train=200,
        backbone=backbones["text"],
        device="cpu",
    )
    assert set(resolved) == {"batch_size", "max_length"}
