"""What the probe reads: a text model's several pooled layers, an image model's several depths,
and an image crop that suits the images' native size. All are recorded in the artifact and
reproduced when it is served."""

from pathlib import Path

import pytest
import torch

from ml.artifacts import load_artifact, save_artifact
from ml.backbones.spec import BackboneSpec
from ml.datasets.inputs import InputStats
from ml.training.image_classifier import POOLED_STAGES, MultiDepthClassifier
from ml.training.run import run_training
from ml.training.sizing import image_crop_pct, pixel_side
from ml.training.text_classifier import POOLED_LAYERS, MeanPooledClassifier
from tests.ml.training.conftest import MakeSpec, Recorder, image_rows, write_stored


def test_the_crop_is_dropped_only_for_images_smaller_than_the_input() -> None:
    assert image_crop_pct(InputStats(image_min_side=28), 0.875, 224) == 1.0
    assert image_crop_pct(InputStats(image_min_side=224), 0.875, 224) == 0.875
    assert image_crop_pct(InputStats(image_min_side=2000), 0.875, 224) == 0.875
    assert image_crop_pct(InputStats(), 0.875, 224) == 0.875  # sizes never measured


def _measured_40px_images(root: Path) -> Path:
    """40-px images, measured as ingest measures them."""
    rows = image_rows(per_class=10)
    header = {
        "multilabel": False,
        "labels": sorted({label for labels, _ in rows for label in labels}),
        "inputs": InputStats(image_min_side=40).to_dict(),
    }
    return write_stored(root, "image_classification", header, [({"labels": y}, x) for y, x in rows])


@pytest.mark.parametrize(("probe_size", "crop", "side"), [(64, 1.0, 32), (32, 0.95, 0)])
def test_a_trained_image_model_records_the_crop_and_pixels_its_images_call_for(
    probe_size: int, crop: float, side: int, make_spec: MakeSpec, tmp_path: Path
) -> None:
    # The test backbone's own crop is 0.95; only images smaller than the input get pixels.
    hp = {"image_size": probe_size, "batch_size": 16}
    spec = make_spec(_measured_40px_images(tmp_path), method="linear_probe", hyperparameters=hp)
    outcome = run_training(spec, Recorder())
    assert outcome.preprocessing["crop_pct"] == crop
    model = outcome.model
    assert isinstance(model, MultiDepthClassifier) and model.pixel_side == side
    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    assert config["backbone"].get("pixel_side", 0) == side


def test_the_pixel_grid_divides_the_input_and_is_never_above_the_images() -> None:
    def side(native: int | None, size: int) -> int:
        return pixel_side(InputStats(image_min_side=native), size)

    assert side(28, 224) == 28
    assert side(8, 224) == 8
    assert side(40, 224) == 32  # at most 32, and 224 = 7 x 32
    assert side(20, 64) == 16
    assert side(224, 224) == side(2000, 224) == side(None, 224) == 0


def test_small_images_give_the_head_their_pixels_beside_the_features(
    make_spec: MakeSpec, tmp_path: Path
) -> None:
    hp = {"image_size": 64, "batch_size": 16}
    spec = make_spec(_measured_40px_images(tmp_path), method="linear_probe", hyperparameters=hp)
    model = run_training(spec, Recorder()).model
    assert isinstance(model, MultiDepthClassifier)
    backbone = model.backbone
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        final, stages = backbone.forward_intermediates(pixels, indices=POOLED_STAGES)
        head = backbone.forward_head(final, pre_logits=True)
        grid = torch.nn.functional.avg_pool2d(pixels, 2).flatten(1)  # 64 px to 32 x 32
        features = torch.cat([s.mean(dim=(2, 3)) for s in stages] + [head, grid], dim=-1)
        assert torch.allclose(model(pixels), model.classifier(features), atol=1e-5)


def test_a_text_model_pools_its_last_layers_side_by_side(
    text_dataset: Path, make_spec: MakeSpec, backbones: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    spec = make_spec(text_dataset, backbone="text", method="linear_probe")
    outcome = run_training(spec, Recorder())
    model = outcome.model
    assert isinstance(model, MeanPooledClassifier)
    layers = min(POOLED_LAYERS, model.config.num_hidden_layers)
    assert model.layers == layers > 1
    assert model.classifier.in_features == layers * model.config.hidden_size

    # The head reads the masked mean of each of those layers, in order.
    batch = outcome.tokenizer(
        ["alpha beta", "a longer text here"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        states = model.encoder(**batch, output_hidden_states=True).hidden_states[-layers:]
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = torch.cat([(s * mask).sum(1) / mask.sum(1) for s in states], dim=-1)
        assert torch.allclose(model(**batch).logits, model.classifier(pooled), atol=1e-5)

    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    assert config["backbone"]["layers"] == layers
    save_artifact(tmp_path / "model", model, config, outcome.tokenizer)
    loaded = load_artifact(tmp_path / "model").model
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)


def test_an_image_model_reads_the_pre_logits_and_the_last_stages_side_by_side(
    image_dataset: Path, make_spec: MakeSpec, tmp_path: Path
) -> None:
    spec = make_spec(image_dataset, method="linear_probe")
    outcome = run_training(spec, Recorder())
    model = outcome.model
    assert isinstance(model, MultiDepthClassifier)
    assert model.stages == POOLED_STAGES > 1
    backbone = model.backbone
    widths = [info["num_chs"] for info in backbone.feature_info][-POOLED_STAGES:]
    assert model.classifier.in_features == sum(widths) + backbone.num_features

    # The head reads the stages' means and the backbone's own pooled features.
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, stages = backbone.forward_intermediates(pixels, indices=POOLED_STAGES)
        head = backbone.forward_head(final, pre_logits=True)
        features = torch.cat([s.mean(dim=(2, 3)) for s in stages] + [head], dim=-1)
        assert torch.allclose(model(pixels), model.classifier(features), atol=1e-5)

    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    assert config["backbone"]["stages"] == POOLED_STAGES
    save_artifact(tmp_path / "model", model, config, None)
    with torch.no_grad():
        assert torch.equal(load_artifact(tmp_path / "model").model(pixels), model(pixels))
