"""The models the trainer writes (an image head over several depths and the raw pixels, a text
head over several layers, with or without TF-IDF rows beside them) export to ONNX and serve the
answers eager torch gives."""

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from timm.data import resolve_data_config
from transformers import AutoModel

from ml.artifacts import load_artifact, save_artifact
from ml.classical.tfidf import fit_vectorizer, preprocessing_of, vectorizer_files
from ml.inference import load_predictor, prepare_serving
from ml.training.image_classifier import POOLED_STAGES, MultiDepthClassifier, average_grid
from ml.training.text_classifier import POOLING, MeanPooledClassifier
from tests.ml.inference.builders import (
    IMAGE_SIZE,
    TEXT_MAX_LENGTH,
    image_bytes,
    minilm_tokenizer,
    texts,
    tiny_bert_config,
)

LABELS = ["a", "b", "c"]


def _classifier_config(modality: str, backbone: dict, preprocessing: dict) -> dict:
    return {
        "task": f"{modality}_classification",
        "modality": modality,
        "library": "timm" if modality == "image" else "transformers",
        "backbone": backbone,
        "labels": LABELS,
        "multilabel": False,
        "thresholds": None,
        "temperature": 1.0,
        "preprocessing": preprocessing,
    }


def _spread(head: torch.nn.Linear) -> None:
    # A random head's logits barely move between inputs: spread them so that a wrong answer
    # is far outside the tolerances.
    with torch.no_grad():
        head.weight.mul_(40.0)


def _check_onnx_serves_like_torch(artifact: Path, inputs: list) -> None:
    torch_predictor = load_predictor(artifact, runtime="torch")
    labels = torch_predictor.forward(torch_predictor.preprocess(inputs)).argmax(axis=1).tolist()
    report = prepare_serving(artifact, inputs, labels)
    onnx = report["candidates"]["onnx_fp32"]
    assert onnx["status"] == "ok", onnx
    assert onnx["max_abs_diff"] < 1e-4
    assert onnx["accuracy"] == 1.0
    served = load_predictor(artifact, runtime="onnx_fp32")
    assert served.forward(served.preprocess(inputs)).argmax(axis=1).tolist() == labels


def test_the_pixel_grid_is_adaptive_pooling_whether_or_not_its_side_divides_the_input() -> None:
    torch.manual_seed(0)
    for size, side in [(64, 28), (224, 28), (30, 7), (32, 8)]:
        pixels = torch.randn(2, 3, size, size)
        expected = torch.nn.functional.adaptive_avg_pool2d(pixels, side)
        torch.testing.assert_close(average_grid(pixels, side), expected)


# 8 divides the 32-px input; 7 does not (as a 28-px grid in a model fine-tuned at 64 px), which
# torch's ONNX exporter refuses for adaptive pooling itself.
@pytest.mark.parametrize("side", [8, 7])
def test_a_multi_depth_image_model_serves_through_onnx(side: int, tmp_path: Path) -> None:
    torch.manual_seed(0)
    backbone = timm.create_model("test_efficientnet", num_classes=0)
    model = MultiDepthClassifier(backbone, len(LABELS), POOLED_STAGES, pixel_side=side).eval()
    _spread(model.classifier)
    data_config = resolve_data_config({}, model=backbone)
    data_config["input_size"] = [3, IMAGE_SIZE, IMAGE_SIZE]
    preprocessing = {k: list(v) if isinstance(v, tuple) else v for k, v in data_config.items()}
    described = {
        "id": "tiny",
        "arch": "test_efficientnet",
        "stages": POOLED_STAGES,
        "pixel_side": side,
    }
    save_artifact(tmp_path / "v1", model, _classifier_config("image", described, preprocessing))
    _check_onnx_serves_like_torch(tmp_path / "v1", [image_bytes(i) for i in range(12)])


def test_a_text_model_pooling_several_layers_serves_through_onnx(tmp_path: Path) -> None:
    tokenizer = minilm_tokenizer()
    torch.manual_seed(0)
    encoder = AutoModel.from_config(tiny_bert_config(tokenizer.vocab_size, len(LABELS)))
    model = MeanPooledClassifier(encoder, len(LABELS), layers=2).eval()
    _spread(model.classifier)
    described = {"id": "tiny-bert", "arch": "bert", "pooling": POOLING, "layers": 2}
    config = _classifier_config("text", described, {"max_length": TEXT_MAX_LENGTH})
    save_artifact(tmp_path / "v1", model, config, tokenizer)
    _check_onnx_serves_like_torch(tmp_path / "v1", texts(12))


def test_a_text_model_reading_tfidf_beside_its_layers_serves_through_onnx(
    tmp_path: Path,
) -> None:
    tokenizer = minilm_tokenizer()
    vectorizer = fit_vectorizer(texts(40))
    tfidf = preprocessing_of(vectorizer)
    torch.manual_seed(0)
    encoder = AutoModel.from_config(tiny_bert_config(tokenizer.vocab_size, len(LABELS)))
    model = MeanPooledClassifier(encoder, len(LABELS), 2, tfidf["num_features"]).eval()
    _spread(model.classifier)
    described = {"id": "tiny-bert", "arch": "bert", "pooling": POOLING, "layers": 2}
    preprocessing = {"max_length": TEXT_MAX_LENGTH, "tfidf": tfidf}
    config = _classifier_config("text", described, preprocessing)
    save_artifact(tmp_path / "v1", model, config, tokenizer, files=vectorizer_files(vectorizer))
    loaded = load_artifact(tmp_path / "v1").model
    assert isinstance(loaded, MeanPooledClassifier)
    assert loaded.extra_features == tfidf["num_features"] > 0
    _check_onnx_serves_like_torch(tmp_path / "v1", texts(12))
    # The TF-IDF columns take part: the same texts without them answer otherwise.
    predictor = load_predictor(tmp_path / "v1", runtime="torch")
    batch = predictor.preprocess(texts(12))
    assert batch["features"].shape == (12, tfidf["num_features"])
    blank = batch | {"features": batch["features"] * 0}
    assert not np.allclose(predictor.forward(batch), predictor.forward(blank))
