from pathlib import Path

import pytest
import timm
import torch

from ml.datasets.store import load_dataset
from ml.training.data import prepare_inputs
from ml.training.features import extract_features, features_path
from ml.training.model import backbone_fingerprint, classifier_layer
from ml.training.spec import TrainingStopped
from tests.ml.training.conftest import image_rows, write_dataset

PREPROCESSING = {
    "input_size": [3, 32, 32],
    "mean": [0.5] * 3,
    "std": [0.5] * 3,
    "interpolation": "bilinear",
    "crop_pct": 1.0,
}


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", pretrained=False, num_classes=3)


def test_features_are_the_classifier_input_and_survive_a_preemption(tmp_path: Path) -> None:
    dataset = load_dataset(write_dataset(tmp_path / "ds", "image_classification", image_rows(4)))
    inputs = prepare_inputs(dataset, PREPROCESSING, tmp_path / "cache")
    model = _model()
    path = features_path(tmp_path / "cache", dataset.path.name, backbone_fingerprint(model), {})

    calls = 0

    def preempt_on_second_batch() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TrainingStopped("preempt")

    with pytest.raises(TrainingStopped):
        extract_features(model, inputs, 8, path, preempt_on_second_batch)
    assert not path.exists()
    assert path.with_name(path.name + ".partial").is_file()

    remaining = 0

    def count() -> None:
        nonlocal remaining
        remaining += 1

    features = extract_features(model, inputs, 8, path, count)
    assert remaining == 1  # only the batch that had not been done
    assert path.is_file() and not path.with_name(path.name + ".partial").exists()

    model.eval()
    with torch.no_grad():
        batch = torch.from_numpy(inputs.pixels[:, :, :32, :32].copy()).float()  # type: ignore[union-attr]
        expected = model.forward_head(model.forward_features(batch / 127.5 - 1), pre_logits=True)  # type: ignore[operator]
    torch.testing.assert_close(features, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(extract_features(model, inputs, 8, path), features)  # from the cache


def test_fingerprint_covers_the_backbone_but_not_the_head() -> None:
    model = _model()
    before = backbone_fingerprint(model)
    with torch.no_grad():
        classifier_layer(model).weight.add_(1.0)
    assert backbone_fingerprint(model) == before
    with torch.no_grad():
        model.conv_stem.weight.add_(1.0)  # type: ignore[operator, union-attr]
    assert backbone_fingerprint(model) != before
