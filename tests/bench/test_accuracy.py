"""bench/accuracy.py: the baseline's features, scoring through the serving path, the verdict."""

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.accuracy import Row, _methods, frozen_features, served_predictions, verdict
from bench.common import ingest_upload, png_bytes, train_and_save, write_text_csv
from ml.backbones.catalog import load_catalog
from ml.backbones.spec import BackboneSpec
from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID, write_test_catalog

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BackboneSpec]:
    path = tmp_path_factory.mktemp("catalog") / "tiny.json"
    return load_catalog([write_test_catalog(path)])


def test_text_features_are_mean_pooled_over_real_tokens_only(
    tiny: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    short = "nice car"
    long = "this self driving car drove me all the way home through the rain tonight"
    torch.manual_seed(0)
    alone = frozen_features(tiny[TINY_TEXT_ID], [short], 3, CPU, tmp_path)
    torch.manual_seed(0)  # the same random backbone again
    padded = frozen_features(tiny[TINY_TEXT_ID], [short, long], 3, CPU, tmp_path)
    assert padded.shape == (2, 32)  # hidden_size of the tiny BERT
    # Padding added for the longer text must not move the short text's features.
    np.testing.assert_allclose(padded[0], alone[0], atol=1e-5)
    assert not np.allclose(padded[0], padded[1])


def test_image_features_are_the_pooled_backbone_output(
    tiny: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    images = [png_bytes(rng.integers(0, 256, (20, 20), dtype=np.uint8)) for _ in range(3)]
    features = frozen_features(tiny[TINY_IMAGE_ID], images, 2, CPU, tmp_path)
    assert features.shape[0] == 3 and features.ndim == 2
    assert np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])


def test_served_predictions_use_the_saved_artifact(
    tiny: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    rows = [(f"tweet number {i} about cars", label) for i, label in
            enumerate(["negative", "neutral", "positive"] * 8)]  # fmt: skip
    upload = write_text_csv(tmp_path / "train.csv", rows)
    dataset = ingest_upload(upload, "text_classification", tmp_path / "data")
    trained = train_and_save(dataset.path, tiny[TINY_TEXT_ID], "linear_probe", tmp_path / "job")
    inputs = ["a new tweet", "another one", "and a third"]

    predicted = served_predictions(trained.artifact_dir, inputs, CPU)

    assert len(predicted) == 3
    assert set(predicted) <= {"negative", "neutral", "positive"}


def _row(modality: str, method: str, kept: str, accuracy: float) -> Row:
    return Row(modality, method, kept, 1.0, 1.0, accuracy, accuracy, None)


def test_verdict_compares_each_method_with_the_best_baseline() -> None:
    rows = [
        _row("image", "baseline: a", "-", 0.80),
        _row("image", "baseline: b", "-", 0.82),
        _row("image", "full", "lp_ft", 0.85),
        _row("text", "baseline: a", "-", 0.70),
        _row("text", "linear_probe", "linear_probe", 0.65),
    ]
    assert verdict(rows) == (
        "verdict (test accuracy vs the best baseline): "
        "image: full +3.0 pts -> full beats it; "
        "text: linear_probe -5.0 pts -> linear_probe does NOT beat it"
    )


def test_methods_keep_the_order_given_and_refuse_unknown_ones() -> None:
    assert _methods("full,linear_probe") == ["full", "linear_probe"]
    with pytest.raises(SystemExit, match="unknown method"):
        _methods("full,magic")
