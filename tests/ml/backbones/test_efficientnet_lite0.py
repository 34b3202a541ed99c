"""The package's EfficientNet-Lite0 weights convert into timm correctly and stay pretrained."""

from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_sample_image
from timm.models.efficientnet import EfficientNet

from ml.backbones import efficientnet_lite0
from ml.backbones.factory import build_image_model
from ml.backbones.spec import BackboneSpec

# ImageNet-1k class indices
PALACE, DAISY = 698, 985


@pytest.fixture(scope="module")
def converted(cache_dir: Path) -> Path:
    return efficientnet_lite0.converted_weights(cache_dir)


@pytest.fixture(scope="module")
def imagenet_model(converted: Path) -> EfficientNet:
    overlay = {"file": str(converted)}
    model = timm.create_model(
        efficientnet_lite0.ARCH, pretrained=True, pretrained_cfg_overlay=overlay
    )
    assert isinstance(model, EfficientNet)
    return model.eval()


@pytest.fixture(scope="module")
def photos(imagenet_model: EfficientNet) -> torch.Tensor:
    """Two real photos shipped with scikit-learn, preprocessed by the model's own data config."""
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=imagenet_model))
    images = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    return torch.stack([transform(image) for image in images])


def test_logits_match_the_package_state_dict_loaded_by_position(
    converted: Path, imagenet_model: EfficientNet, photos: torch.Tensor
) -> None:
    source = efficientnet_lite0.load_source_state_dict(efficientnet_lite0.source_file())
    reference = timm.create_model(efficientnet_lite0.ARCH, pretrained=False).eval()
    names = list(reference.state_dict())
    reference.load_state_dict(dict(zip(names, source.values(), strict=True)))

    with torch.no_grad():
        assert torch.equal(reference(photos), imagenet_model(photos))
    assert set(load_file(converted)) == set(names)


def test_converted_model_recognises_real_photos(
    imagenet_model: EfficientNet, photos: torch.Tensor
) -> None:
    with torch.no_grad():
        top5 = imagenet_model(photos).topk(5).indices
    assert PALACE in top5[0].tolist()  # a photo of a Chinese temple
    assert DAISY in top5[1].tolist()  # a close-up of a flower


def test_features_and_batchnorm_statistics_are_pretrained(
    imagenet_model: EfficientNet, photos: torch.Tensor
) -> None:
    with torch.no_grad():
        features = imagenet_model.forward_head(
            imagenet_model.forward_features(photos), pre_logits=True
        )
    assert features.std(dim=1).min() > 0.1
    assert torch.cosine_similarity(features[0], features[1], dim=0) < 0.9
    head_bn = imagenet_model.state_dict()["bn2.running_var"]
    assert not torch.allclose(head_bn, torch.ones_like(head_bn))  # ones = never trained
    stem_bn = imagenet_model.state_dict()["bn1.running_mean"]
    assert stem_bn.abs().mean() > 1e-3


def test_conversion_is_done_once(cache_dir: Path, converted: Path) -> None:
    before = converted.stat().st_mtime_ns
    assert efficientnet_lite0.converted_weights(cache_dir) == converted
    assert converted.stat().st_mtime_ns == before
    assert converted.name.startswith("efficientnet_lite0-")
    assert not [p for p in converted.parent.iterdir() if p.name.endswith(".tmp")]


def test_rename_refuses_mismatched_shapes() -> None:
    source = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    with pytest.raises(ValueError, match=r"b \(4,\) does not fit y \(5,\)"):
        efficientnet_lite0.rename_in_order(source, {"x": torch.Size([2, 3]), "y": torch.Size([5])})
    with pytest.raises(ValueError, match="2 source tensors but 1 target"):
        efficientnet_lite0.rename_in_order(source, {"x": torch.Size([2, 3])})


def test_factory_keeps_the_backbone_and_gives_a_fresh_head(
    catalog: dict[str, BackboneSpec],
    cache_dir: Path,
    imagenet_model: EfficientNet,
    photos: torch.Tensor,
) -> None:
    model, data_config = build_image_model(catalog["efficientnet_lite0"], 5, cache_dir)
    assert isinstance(model, EfficientNet)
    model.eval()

    assert model.get_classifier().out_features == 5
    with torch.no_grad():
        assert torch.equal(model.forward_features(photos), imagenet_model.forward_features(photos))
        assert model(photos).shape == (2, 5)
    assert data_config["input_size"] == (3, 224, 224)
    assert data_config["mean"] == (0.5, 0.5, 0.5)  # TF-style Lite0 normalisation, from timm
    assert data_config["interpolation"] == "bicubic"
    assert data_config["crop_pct"] == 0.875


def test_a_1000_class_head_is_fresh_too(
    catalog: dict[str, BackboneSpec], cache_dir: Path, imagenet_model: EfficientNet
) -> None:
    model, _ = build_image_model(catalog["efficientnet_lite0"], 1000, cache_dir)
    assert isinstance(model, EfficientNet)
    fresh, imagenet = model.get_classifier().weight, imagenet_model.get_classifier().weight
    assert fresh.shape == imagenet.shape
    assert not torch.equal(fresh, imagenet)
