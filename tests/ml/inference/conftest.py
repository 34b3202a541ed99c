from pathlib import Path

import pytest

from ml.artifacts import load_artifact
from ml.inference.onnx_export import ONNX_FILES, export_onnx, quantize_int8
from ml.inference.predictor import load_predictor
from tests.ml.inference.builders import (
    image_artifact,
    image_bytes,
    regression_artifact,
    text_artifact,
)

IMAGE_LABELS = ["cat", "dog", "fox"]
TEXT_LABELS = ["neg", "neutral", "pos"]
MULTI_LABELS = ["a", "b", "c", "d"]


def _with_onnx(artifact_dir: Path) -> Path:
    """Export both ONNX files the way prepare_serving does, without its measuring."""
    loaded = load_artifact(artifact_dir)
    predictor = load_predictor(artifact_dir, runtime="torch")
    sample = predictor.preprocess(
        ["hi", "a longer text with padding"]
        if predictor.modality == "text"
        else [image_bytes(0)] * 2
    )
    export_onnx(loaded.model, sample, artifact_dir / ONNX_FILES["onnx_fp32"])
    quantize_int8(artifact_dir / ONNX_FILES["onnx_fp32"], artifact_dir / ONNX_FILES["onnx_int8"])
    return artifact_dir


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_onnx(image_artifact(tmp_path_factory.mktemp("img") / "v1", IMAGE_LABELS))


@pytest.fixture(scope="session")
def image_multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("imgm") / "v1"
    thresholds = [0.3, 0.5, 0.6, 0.45]
    return _with_onnx(image_artifact(dest, MULTI_LABELS, multilabel=True, thresholds=thresholds))


@pytest.fixture(scope="session")
def text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _with_onnx(text_artifact(tmp_path_factory.mktemp("txt") / "v1", TEXT_LABELS))


@pytest.fixture(scope="session")
def text_multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("txtm") / "v1"
    return _with_onnx(text_artifact(dest, MULTI_LABELS, multilabel=True, temperature=0.8))


@pytest.fixture(scope="session")
def image_regression_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("imgr") / "v1"
    # Targets on scales far from standardised ones, so a missing de-standardisation shows.
    return _with_onnx(regression_artifact(dest, "image", ["price"], mean=[250.0], std=[40.0]))


@pytest.fixture(scope="session")
def text_regression_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("txtr") / "v1"
    artifact = regression_artifact(
        dest, "text", ["width", "height"], mean=[12.0, -3.0], std=[0.5, 8.0]
    )
    return _with_onnx(artifact)
