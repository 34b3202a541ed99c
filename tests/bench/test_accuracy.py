"""bench/accuracy.py: the baselines' features and classical models, scoring through the serving
path, the command line's choices."""

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.accuracy import (
    PixelVector,
    _add_size_arguments,
    _datasets,
    _methods,
    _reported,
    classical_row,
    frozen_features,
    load_dataset,
    served_predictions,
)
from bench.accuracy_data import DATASETS, Benchmark, Modality
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


def test_methods_keep_the_order_given_and_refuse_unknown_ones() -> None:
    assert _methods("full,linear_probe") == ["full", "linear_probe"]
    with pytest.raises(SystemExit, match="unknown method"):
        _methods("full,magic")


def test_datasets_keep_the_order_given_drop_the_other_modality_and_refuse_unknown_ones() -> None:
    assert [d.name for d in _datasets("tweets,digits")] == ["tweets", "digits"]
    assert [d.name for d in _datasets("tweets,digits,bbc_news", "image")] == ["digits"]
    with pytest.raises(SystemExit, match="unknown dataset"):
        _datasets("digits,cifar")


def test_pixel_vector_reads_grey_levels_at_the_training_images_side() -> None:
    ink = np.zeros((8, 8), dtype=np.uint8)
    ink[2, 3] = 255
    vectors = PixelVector().fit([png_bytes(ink)] * 3).transform([png_bytes(ink)])
    assert vectors.shape == (1, 64)
    assert vectors[0, 2 * 8 + 3] == 1.0 and vectors.sum() == 1.0
    # Larger images shrink to the cap: one input size for the linear model.
    big = [png_bytes(np.full((64, 48), 128, dtype=np.uint8))]
    assert PixelVector(max_side=16).fit(big).transform(big).shape == (1, 256)


def _bench(modality: Modality, train: list, test: list, labels: list[str]) -> Benchmark:
    task = f"{modality}_classification"
    return Benchmark("toy", modality, task, "-", Path("-"), train, labels, test, labels)


def test_classical_rows_learn_from_raw_pixels_and_from_words() -> None:
    rng = np.random.default_rng(0)
    # Bright images and dark ones: raw pixels separate them perfectly.
    images = [png_bytes(rng.integers(lo, lo + 60, (8, 8), dtype=np.uint8)) for lo in [0, 190] * 10]
    labels = ["dark", "bright"] * 10
    row = classical_row(_bench("image", images, images, labels))
    assert row.method.startswith("classical: raw pixels") and row.kept == "-"
    assert row.accuracy == 1.0
    texts = [f"{word} {i}" for i, word in enumerate(["goal match", "vote party"] * 10)]
    row = classical_row(_bench("text", texts, texts, ["sport", "politics"] * 10))
    assert row.method.startswith("classical: TF-IDF") and row.accuracy == 1.0


def test_reported_candidates_and_plan_are_optional() -> None:
    assert _reported({"macro_f1": 0.5}) == ([], None)
    candidate = {"name": "classical", "status": "kept", "validation": {"val_macro_f1": 0.9}}
    plan = {"method": "auto", "candidates": []}
    assert _reported({"candidates": [candidate, "junk"], "plan": plan}) == ([candidate], plan)


def test_size_flags_choose_each_datasets_sizes_and_keep_the_old_names(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=tmp_path)
    _add_size_arguments(parser)
    calls = []

    def load(train: int, test: int | None, seed: int, out: Path) -> Benchmark:
        calls.append((train, test))
        return _bench("text", [], [], [])

    digits = replace(next(d for d in DATASETS if d.name == "digits"), load=load)
    tweets = replace(next(d for d in DATASETS if d.name == "tweets"), load=load)
    load_dataset(digits, parser.parse_args([]))
    load_dataset(digits, parser.parse_args(["--quick"]))
    load_dataset(digits, parser.parse_args(["--digits-train", "5", "--digits-test", "all"]))
    load_dataset(tweets, parser.parse_args(["--text-train", "7", "--tweets-test", "9"]))
    assert calls == [(30, None), (10, 300), (5, None), (7, 9)]
    with pytest.raises(SystemExit):
        parser.parse_args(["--digits-test", "0"])
