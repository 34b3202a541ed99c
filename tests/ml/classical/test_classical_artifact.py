"""A classical artifact on disk: the extra files it carries stay inside it, and the config the
outcome writes names the classical library, not the job's backbone."""

from pathlib import Path

import pytest
import torch

from ml.artifacts import load_artifact, save_artifact
from ml.classical.model import LinearOnFeatures
from ml.training.model import classifier_layer
from ml.training.outcome import TrainOutcome
from ml.training.probe import install_head
from tests.ml.classical.classical_data import backbone

PREPROCESSING = {"kind": "pixels", "side": 2, "channels": 3, "num_features": 12}
CONFIG = {
    "task": "image_classification",
    "modality": "image",
    "library": "classical",
    "backbone": {"id": "classical", "arch": "pixels"},
    "labels": ["a", "b", "c"],
    "preprocessing": PREPROCESSING,
}


def _model() -> LinearOnFeatures:
    model = LinearOnFeatures(12, 3)
    install_head(model, torch.arange(36.0).reshape(3, 12), torch.tensor([1.0, 2.0, 3.0]))
    return model


def test_the_head_is_found_and_filled_like_a_timm_models() -> None:
    model = _model()
    assert classifier_layer(model) is model.get_classifier()
    out = model(torch.ones(2, 12))
    assert out.shape == (2, 3) and out[0].tolist() == [67.0, 212.0, 357.0]


def test_extra_files_are_written_and_the_model_reloads(tmp_path: Path) -> None:
    model = _model()
    save_artifact(tmp_path / "v1", model, CONFIG, files={"extra/notes.json": b"[1]"})
    assert (tmp_path / "v1" / "extra" / "notes.json").read_bytes() == b"[1]"
    loaded = load_artifact(tmp_path / "v1")
    assert isinstance(loaded.model, LinearOnFeatures) and not loaded.model.training
    assert torch.equal(loaded.model.classifier.weight, model.classifier.weight)


@pytest.mark.parametrize("name", ["../escape.json", "/abs.json", "config.json", "hf/x.json", ""])
def test_files_outside_the_artifact_or_over_its_own_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        save_artifact(tmp_path / "v1", _model(), CONFIG, files={name: b"x"})
    assert not (tmp_path / "v1").exists() and not (tmp_path / "escape.json").exists()
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone too


def test_the_outcome_names_the_classical_library() -> None:
    outcome = TrainOutcome(
        model=_model(),
        tokenizer=None,
        task="image_classification",
        labels=["a", "b", "c"],
        task_config={"labels": ["a", "b", "c"]},
        metrics={},
        hyperparameters={},
        method="classical",
        method_reason="",
        class_weights=None,
        preprocessing=dict(PREPROCESSING),
        backbone_weights_sha256="abc",
        resumed_from_step=None,
        library="classical",
    )
    config = outcome.artifact_config(backbone("image"), {})
    assert config["library"] == "classical" and config["modality"] == "image"
    assert config["backbone"] == {"id": "classical", "arch": "pixels"}
    deep = TrainOutcome(**{**outcome.__dict__, "library": None})
    assert deep.artifact_config(backbone("image"), {})["library"] == "timm"
