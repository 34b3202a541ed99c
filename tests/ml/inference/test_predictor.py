import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform

from ml.artifacts import load_artifact
from ml.inference import InputError, RuntimeUnavailable, load_predictor
from ml.tasks import PredictOptions
from tests.ml.inference.builders import TEXT_MAX_LENGTH, image_bytes, texts

# runtime -> how far its probabilities may be from eager torch's
# Dynamic int8 (measured by bench/runtimes.py, never served) quantises the test models' heads,
# whose weights are scaled up so that mixed-up answers stand out; onnxruntime 1.32 puts their
# probabilities up to 0.08 from fp32 on the multi-label text model. Wrong preprocessing or a
# mixed-up batch moves them far more.
RUNTIMES = [("torch", 1e-5), ("onnx_fp32", 1e-4), ("onnx_int8", 0.12)]


def _calibrated(logits: torch.Tensor, temperature: float, multilabel: bool) -> np.ndarray:
    scaled = logits.double() / temperature
    return (torch.sigmoid(scaled) if multilabel else torch.softmax(scaled, dim=1)).numpy()


def reference_image_probs(artifact_dir: Path, images: list[bytes]) -> np.ndarray:
    """The model's own temperature-scaled probabilities, computed without ml.inference."""
    artifact = load_artifact(artifact_dir)
    pre = artifact.config["preprocessing"]
    transform = create_transform(
        input_size=tuple(pre["input_size"]),
        interpolation=pre["interpolation"],
        mean=tuple(pre["mean"]),
        std=tuple(pre["std"]),
        crop_pct=pre["crop_pct"],
        crop_mode=pre["crop_mode"],
        is_training=False,
    )
    x = torch.stack([transform(Image.open(io.BytesIO(b)).convert("RGB")) for b in images])
    with torch.no_grad():
        logits = artifact.model(x)
    return _calibrated(logits, artifact.config["temperature"], artifact.config["multilabel"])


def reference_text_probs(artifact_dir: Path, batch: list[str]) -> np.ndarray:
    """Each text run alone (no padding at all) through the transformers model."""
    artifact = load_artifact(artifact_dir)
    assert artifact.tokenizer is not None
    rows = []
    for text in batch:
        encoded = artifact.tokenizer(
            text, truncation=True, max_length=TEXT_MAX_LENGTH, return_tensors="pt"
        )
        with torch.no_grad():
            rows.append(artifact.model(**encoded).logits)
    cfg = artifact.config
    return _calibrated(torch.cat(rows), cfg["temperature"], cfg["multilabel"])


def _probs(artifact_dir: Path, runtime: str, inputs: list) -> np.ndarray:
    predictor = load_predictor(artifact_dir, runtime=runtime)
    assert predictor.runtime == runtime
    return predictor.postprocess(predictor.forward(predictor.preprocess(inputs)))


@pytest.mark.parametrize(("runtime", "tolerance"), RUNTIMES)
@pytest.mark.parametrize("fixture", ["image_dir", "image_multi_dir"])
def test_image_probabilities_match_the_model(
    runtime: str, tolerance: float, fixture: str, request: pytest.FixtureRequest
) -> None:
    artifact_dir = request.getfixturevalue(fixture)
    images = [image_bytes(i, size=(30 + 7 * i, 50 - 3 * i)) for i in range(5)]
    images.append(image_bytes(99, fmt="JPEG"))
    expected = reference_image_probs(artifact_dir, images)
    np.testing.assert_allclose(_probs(artifact_dir, runtime, images), expected, atol=tolerance)


@pytest.mark.parametrize(("runtime", "tolerance"), RUNTIMES)
@pytest.mark.parametrize("fixture", ["text_dir", "text_multi_dir"])
def test_text_probabilities_match_the_model_run_on_each_text_alone(
    runtime: str, tolerance: float, fixture: str, request: pytest.FixtureRequest
) -> None:
    artifact_dir = request.getfixturevalue(fixture)
    batch = texts(7)
    expected = reference_text_probs(artifact_dir, batch)
    np.testing.assert_allclose(_probs(artifact_dir, runtime, batch), expected, atol=tolerance)


@pytest.mark.parametrize("runtime", ["torch", "onnx_fp32"])
def test_text_logits_do_not_depend_on_batch_mates(text_dir: Path, runtime: str) -> None:
    predictor = load_predictor(text_dir, runtime=runtime)
    batch = ["short", *texts(5), "a " * 200]
    together = predictor.forward(predictor.preprocess(batch))
    assert predictor.preprocess(batch)["input_ids"].shape[1] == TEXT_MAX_LENGTH
    for i, text in enumerate(batch):
        alone = predictor.forward(predictor.preprocess([text]))
        np.testing.assert_allclose(together[i], alone[0], atol=1e-4)


def test_short_text_batches_are_padded_to_their_longest_member_only(text_dir: Path) -> None:
    predictor = load_predictor(text_dir)
    batch = predictor.preprocess(["one", "one two three"])
    # [CLS] one two three [SEP]: 5 tokens, far below max_length
    assert batch["input_ids"].shape == (2, 5)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_single_label_format_and_top_k(image_dir: Path) -> None:
    predictor = load_predictor(image_dir)
    assert predictor.names == ["cat", "dog", "fox"]
    assert predictor.task.name == "image_classification"
    assert predictor.modality == "image"
    probs = predictor.postprocess(predictor.forward(predictor.preprocess([image_bytes(3)])))
    (prediction,) = predictor.format(probs, PredictOptions(top_k=2))
    order = np.argsort(-probs[0])
    assert prediction["label"] == predictor.names[order[0]]
    assert prediction["score"] == pytest.approx(probs[0, order[0]])
    assert [s["label"] for s in prediction["scores"]] == [predictor.names[i] for i in order[:2]]
    assert prediction["scores"][0]["score"] == prediction["score"]
    assert len(predictor.format(probs, PredictOptions(top_k=10))[0]["scores"]) == 3
    assert len(predictor.format(probs, PredictOptions(top_k=0))[0]["scores"]) == 1


def test_multilabel_format_uses_the_config_thresholds(image_multi_dir: Path) -> None:
    predictor = load_predictor(image_multi_dir)
    thresholds = np.array([0.3, 0.5, 0.6, 0.45])
    images = [image_bytes(i) for i in range(8)]
    probs = predictor.postprocess(predictor.forward(predictor.preprocess(images)))
    predictions = predictor.format(probs, PredictOptions(top_k=4))
    for row, prediction in zip(probs, predictions, strict=True):
        assert "label" not in prediction
        over = {
            label for label, p, t in zip(predictor.names, row, thresholds, strict=True) if p >= t
        }
        assert set(prediction["labels"]) == over
        assert [s["score"] for s in prediction["scores"]] == sorted(row, reverse=True)


def test_undecodable_and_oversized_images_name_the_input(image_dir: Path) -> None:
    predictor = load_predictor(image_dir, max_pixels=50 * 50)
    with pytest.raises(InputError) as corrupt:
        predictor.preprocess([image_bytes(1), b"not an image at all"])
    assert corrupt.value.field == "inputs[1]"
    truncated = image_bytes(2)[:100]
    with pytest.raises(InputError, match=r"inputs\[0\]"):
        predictor.preprocess([truncated])
    with pytest.raises(InputError, match="pixel limit") as big:
        predictor.preprocess([image_bytes(1), image_bytes(2), image_bytes(3, size=(60, 60))])
    assert big.value.index == 2
    with pytest.raises(InputError, match="bytes"):
        predictor.preprocess(["a string is not an image"])


def test_non_string_text_is_an_input_error(text_dir: Path) -> None:
    predictor = load_predictor(text_dir)
    with pytest.raises(InputError) as error:
        predictor.preprocess(["fine", 3])  # type: ignore[arg-type]
    assert error.value.field == "inputs[1]"


def test_runtime_comes_from_config_and_missing_files_are_reported(tmp_path: Path) -> None:
    from tests.ml.inference.builders import image_artifact

    artifact_dir = image_artifact(tmp_path / "v1", ["x", "y"])
    assert load_predictor(artifact_dir).runtime == "torch"
    with pytest.raises(RuntimeUnavailable, match=r"model\.onnx"):
        load_predictor(artifact_dir, runtime="onnx_fp32")
    with pytest.raises(RuntimeUnavailable, match="unknown runtime"):
        load_predictor(artifact_dir, runtime="tensorrt")


def test_memory_estimate_grows_with_the_weights(image_dir: Path, text_dir: Path) -> None:
    image = load_predictor(image_dir)
    text = load_predictor(text_dir)
    # the tiny BERT's 30522-token embedding dwarfs the tiny convnet
    assert text.memory_bytes > image.memory_bytes > 0
    assert load_predictor(text_dir, runtime="onnx_int8").memory_bytes < text.memory_bytes
