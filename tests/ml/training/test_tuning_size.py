"""Fine-tuning at a data-aware size: the tuned model trains, is saved and is served there, for
CNNs (any size as they are) and ViTs (position embeddings resampled by timm)."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from ml.artifacts import load_artifact, save_artifact
from ml.backbones.spec import BackboneSpec
from ml.training.run import run_training
from tests.ml.training.conftest import MakeSpec, Recorder

TINY_VIT = {"kwargs": {"depth": 1, "embed_dim": 32, "num_heads": 2, "img_size": 64}}


@pytest.mark.parametrize("arch", ["test_efficientnet", "vit_tiny_patch16_224"])
def test_a_model_tuned_below_the_probe_size_is_served_at_that_size(
    arch: str,
    image_dataset: Path,
    backbones: dict[str, BackboneSpec],
    make_spec: MakeSpec,
    tmp_path: Path,
) -> None:
    spec = backbones["image"]
    if arch != spec.arch:
        spec = replace(spec, id="tiny-vit", arch=arch, options=TINY_VIT)
    hp = {"image_size": 32, "probe_image_size": 64, "batch_size": 16, "epochs": 1}
    spec = replace(make_spec(image_dataset, method="full", hyperparameters=hp), backbone=spec)
    hooks = Recorder()
    outcome = run_training(spec, hooks)

    assert outcome.method == "lp_ft"
    assert outcome.preprocessing["input_size"] == [3, 32, 32]
    probe_sizes = [e for e in hooks.events if "fine-tuning at 32 px" in e["message"]]
    assert probe_sizes, "the tuning head was fitted at the tuning size"
    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    save_artifact(tmp_path / "model", outcome.model, config, None)
    loaded = load_artifact(tmp_path / "model")
    assert loaded.config["preprocessing"]["input_size"] == [3, 32, 32]
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(outcome.model(pixels), loaded.model(pixels))
