"""A regression version served like a classifier: the same predictor, runtimes and runtime
choice, answering values on the targets' own scale with conformal intervals."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.artifacts import load_artifact
from ml.inference import load_predictor, prepare_serving
from ml.tasks import PredictOptions
from ml.tasks.regression.conformal import half_widths
from tests.ml.inference.builders import TEXT_MAX_LENGTH, image_bytes, texts


def _images() -> list[bytes]:
    return [image_bytes(i, size=(30 + 5 * i, 40)) for i in range(6)]


def _reference(artifact_dir: Path, inputs: list) -> np.ndarray:
    """raw * std + mean from the torch model itself, each input run alone."""
    artifact = load_artifact(artifact_dir)
    predictor = load_predictor(artifact_dir, runtime="torch")
    rows = []
    for item in inputs:
        if artifact.tokenizer is not None:
            encoded = artifact.tokenizer(
                item, truncation=True, max_length=TEXT_MAX_LENGTH, return_tensors="pt"
            )
            with torch.no_grad():
                rows.append(artifact.model(**encoded).logits)
        else:
            pixels = torch.from_numpy(predictor.preprocess([item])["pixel_values"])
            with torch.no_grad():
                rows.append(artifact.model(pixels))
    scale = artifact.config["target_scale"]
    raw = torch.cat(rows).double().numpy()
    return raw * np.asarray(scale["std"]) + np.asarray(scale["mean"])


@pytest.mark.parametrize("runtime", ["torch", "onnx_fp32"])
@pytest.mark.parametrize("fixture", ["image_regression_dir", "text_regression_dir"])
def test_values_are_the_models_outputs_on_the_targets_scale(
    runtime: str, fixture: str, request: pytest.FixtureRequest
) -> None:
    artifact_dir: Path = request.getfixturevalue(fixture)
    inputs: list = _images() if fixture.startswith("image") else texts(6)
    predictor = load_predictor(artifact_dir, runtime=runtime)
    assert predictor.runtime == runtime
    values = predictor.postprocess(predictor.forward(predictor.preprocess(inputs)))
    expected = _reference(artifact_dir, inputs)
    std = np.asarray(load_artifact(artifact_dir).config["target_scale"]["std"])
    assert values.dtype == np.float64
    np.testing.assert_allclose(values / std, expected / std, atol=1e-4)
    assert np.ptp(values, axis=0).min() > 0, "inputs must get different answers"


def test_one_target_answers_a_value_and_its_interval(image_regression_dir: Path) -> None:
    predictor = load_predictor(image_regression_dir)
    assert predictor.task.name == "image_regression" and predictor.names == ["price"]
    intervals = load_artifact(image_regression_dir).config["intervals"]
    images = _images()[:3]
    values = predictor.postprocess(predictor.forward(predictor.preprocess(images)))
    for coverage in (0.5, 0.9):
        (q,) = half_widths(intervals, coverage)
        predictions = predictor.predict(images, PredictOptions(coverage=coverage))
        for prediction, (value,) in zip(predictions, values, strict=True):
            assert set(prediction) == {"value", "interval", "coverage"}
            assert prediction["value"] == pytest.approx(value)
            assert prediction["interval"] == pytest.approx([value - q, value + q])
            assert prediction["coverage"] == coverage
    narrow = predictor.predict(images[:1], PredictOptions(coverage=0.5))[0]["interval"]
    wide = predictor.predict(images[:1], PredictOptions(coverage=0.9))[0]["interval"]
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_several_targets_answer_lists_in_target_order(text_regression_dir: Path) -> None:
    predictor = load_predictor(text_regression_dir)
    intervals = load_artifact(text_regression_dir).config["intervals"]
    q = half_widths(intervals, 0.9)
    (prediction,) = predictor.predict(["a short text"])  # the default coverage: 0.9
    assert prediction["targets"] == ["width", "height"]
    assert prediction["coverage"] == 0.9
    for value, (low, high), half in zip(
        prediction["value"], prediction["interval"], q, strict=True
    ):
        assert (low, high) == pytest.approx((value - half, value + half))
    json.dumps(prediction)  # plain floats and lists


def test_a_coverage_the_calibration_cannot_promise_is_refused(
    image_regression_dir: Path,
) -> None:
    predictor = load_predictor(image_regression_dir)  # 40 held-out residuals: at most 40/41
    predictor.check(PredictOptions(coverage=0.97))
    with pytest.raises(ValueError, match=r"ask for at most 0\.975"):
        predictor.check(PredictOptions(coverage=0.99))
    with pytest.raises(ValueError, match="ask for at most"):
        predictor.predict(_images()[:1], PredictOptions(coverage=0.99))
    with pytest.raises(ValueError, match="between 0 and 1"):
        predictor.check(PredictOptions(coverage=1.0))


def test_prepare_serving_judges_a_regressor_in_standard_deviations(
    image_regression_dir: Path, tmp_path: Path
) -> None:
    artifact_dir = tmp_path / "v1"
    shutil.copytree(image_regression_dir, artifact_dir)
    images = [image_bytes(i) for i in range(12)]

    report = prepare_serving(artifact_dir, images, None, candidates=("onnx_fp32",))

    assert report["criteria"] == {"max_accuracy_drop": 0.005, "max_abs_diff": 0.05}
    torch_result, fp32 = report["candidates"]["torch"], report["candidates"]["onnx_fp32"]
    assert torch_result["accuracy"] is None and torch_result["max_abs_diff"] == 0.0
    assert fp32["status"] == "ok" and fp32["accuracy"] is None
    assert fp32["agreement"] == 1.0
    assert fp32["max_abs_diff"] < 1e-3  # std units: float rounding, not a wrong answer
    assert fp32["eligible"] and report["chosen"] in ("torch", "onnx_fp32")
    served = load_predictor(artifact_dir)
    assert served.runtime == report["chosen"]
    eager = load_predictor(artifact_dir, runtime="torch")
    options = PredictOptions(coverage=0.8)
    for got, expected in zip(
        served.predict(images, options), eager.predict(images, options), strict=True
    ):
        assert got["value"] == pytest.approx(expected["value"], abs=40 * 1e-3)


def test_an_artifact_of_an_unknown_task_is_refused_on_every_runtime(
    image_regression_dir: Path, tmp_path: Path
) -> None:
    artifact_dir = tmp_path / "v1"
    shutil.copytree(image_regression_dir, artifact_dir)
    config = json.loads((artifact_dir / "config.json").read_text())
    (artifact_dir / "config.json").write_text(json.dumps(config | {"task": "image_depth"}))
    for runtime in ("torch", "onnx_fp32"):
        with pytest.raises(ValueError, match="unknown task 'image_depth'"):
            load_predictor(artifact_dir, runtime=runtime)
