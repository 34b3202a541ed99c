"""A classical model end to end at the engine level: ingested data, the featurizer, the task's
cross-fitted probe, the artifact, and load_predictor answering through the same
preprocess -> forward -> postprocess -> format steps as any model version."""

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.artifacts import load_artifact
from ml.classical.candidate import TfidfFeaturizer
from ml.classical.model import LinearOnFeatures
from ml.classical.pixels import image_files
from ml.classical.tfidf import IDF_FILE, VOCABULARY_FILE, tfidf_rows
from ml.datasets.store import StoredDataset
from ml.inference.onnx_export import ONNX_FILES
from ml.inference.predictor import Predictor, load_predictor
from ml.inference.serving import prepare_serving
from ml.tasks import PredictOptions
from tests.ml.classical.classical_data import (
    Classical,
    digits_images,
    digits_split,
    fit_classical,
    folder_zip,
    in_memory_outputs,
    ingest_upload,
    save,
    topic_texts,
    write_csv,
)


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoredDataset, StoredDataset]:
    """(1,000 training digits, the other 797) as folder-per-label zips of 8x8 PNGs."""
    root = tmp_path_factory.mktemp("digits")
    train, held_out = digits_split(1000)
    sets = []
    for name, rows in (("train", train), ("held_out", held_out)):
        upload = folder_zip(root / f"{name}.zip", *digits_images(rows))
        sets.append(ingest_upload(upload, "image_classification", root))
    return sets[0], sets[1]


@pytest.fixture(scope="module")
def digits_model(
    digits: tuple[StoredDataset, StoredDataset], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Classical, Path]:
    classical = fit_classical(digits[0])
    return classical, save(classical, tmp_path_factory.mktemp("digits-model") / "v1")


@pytest.fixture(scope="module")
def topics_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Classical, Path]:
    root = tmp_path_factory.mktemp("topics")
    upload = write_csv(root / "t.csv", ["text", "label"], topic_texts(150))
    classical = fit_classical(ingest_upload(upload, "text_classification", root))
    return classical, save(classical, root / "v1")


def _texts(dataset: StoredDataset) -> list[str]:
    return [example.text or "" for example in dataset.examples]


def _answers(predictor: Predictor, inputs: list[bytes] | list[str], **options: int) -> list[dict]:
    return predictor.predict(inputs, PredictOptions(**options))


def test_digits_served_from_the_artifact_match_the_model_and_score(
    digits: tuple[StoredDataset, StoredDataset], digits_model: tuple[Classical, Path]
) -> None:
    classical, artifact_dir = digits_model
    _, held_out = digits
    config = json.loads((artifact_dir / "config.json").read_text())
    assert config["library"] == "classical" and config["modality"] == "image"
    assert config["backbone"] == {"id": "classical", "arch": "pixels"}
    assert config["preprocessing"]["side"] == 8 and config["preprocessing"]["channels"] == 1
    assert config["temperature"] > 0 and config["method"] == "classical"
    loaded = load_artifact(artifact_dir)
    assert isinstance(loaded.model, LinearOnFeatures) and loaded.tokenizer is None

    predictor = load_predictor(artifact_dir)
    inputs = [path.read_bytes() for path in image_files(held_out)]
    raw = predictor.forward(predictor.preprocess(inputs))
    np.testing.assert_allclose(raw, in_memory_outputs(classical, held_out), rtol=1e-5, atol=1e-5)

    answers = _answers(predictor, inputs, top_k=3)
    truth = [example.labels[0] for example in held_out.examples]
    accuracy = np.mean([a["label"] == t for a, t in zip(answers, truth, strict=True)])
    assert accuracy >= 0.9  # a logistic regression on the raw pixels scores about 0.97
    assert all(len(a["scores"]) == 3 and a["scores"][0]["label"] == a["label"] for a in answers)
    # The calibrated probabilities: softmax of the logits over the fitted temperature.
    probabilities = torch.softmax(torch.from_numpy(raw) / config["temperature"], dim=1).numpy()
    best = probabilities.max(axis=1)
    np.testing.assert_allclose([a["score"] for a in answers], best, rtol=1e-5)


def test_texts_served_from_the_artifact_match_the_model(
    topics_model: tuple[Classical, Path],
) -> None:
    classical, artifact_dir = topics_model
    assert (artifact_dir / VOCABULARY_FILE).is_file() and (artifact_dir / IDF_FILE).is_file()
    assert not (artifact_dir / "hf").exists()
    predictor = load_predictor(artifact_dir)
    assert predictor.modality == "text" and predictor.names == ["food", "sport", "tech"]
    texts = _texts(classical.dataset)
    raw = predictor.forward(predictor.preprocess(texts))
    expected = in_memory_outputs(classical, classical.dataset)
    np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-5)

    unseen = ["pizza with cheese", "a tennis match", "new laptop software", "", "zyzzyva"]
    raw = predictor.forward(predictor.preprocess(unseen))
    assert isinstance(classical.featurizer, TfidfFeaturizer)
    with torch.no_grad():
        rows = torch.from_numpy(tfidf_rows(classical.featurizer.vectorizer, unseen))
        np.testing.assert_allclose(raw, classical.outcome.model(rows).numpy(), atol=1e-5)
    answers = _answers(predictor, unseen[:3], top_k=2)
    assert [a["label"] for a in answers] == ["food", "sport", "tech"]
    assert all(len(a["scores"]) == 2 for a in answers)


def test_a_regression_head_serves_values_on_the_targets_scale(tmp_path: Path) -> None:
    rng = random.Random(0)
    words = ["good", "bad", "fine", "plain", "nice", "today", "we", "the"]
    rows = []
    for i in range(160):
        text = [rng.choice(words) for _ in range(rng.randint(4, 9))]
        score = 3 + text.count("good") + 0.5 * text.count("nice") - text.count("bad")
        rows.append((" ".join(text) + f" n{i}", round(score + rng.gauss(0, 0.1), 3)))
    upload = write_csv(tmp_path / "ratings.csv", ["text", "target"], rows)
    dataset = ingest_upload(upload, "text_regression", tmp_path)
    classical = fit_classical(dataset)
    artifact_dir = save(classical, tmp_path / "v1")

    predictor = load_predictor(artifact_dir)
    texts = _texts(dataset)
    truth = np.array([example.target[0] for example in dataset.examples])
    answers = _answers(predictor, texts)
    values = np.array([a["value"] for a in answers])
    expected = predictor.postprocess(in_memory_outputs(classical, dataset))[:, 0]
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-4)
    assert np.corrcoef(values, truth)[0, 1] > 0.9
    low, high = np.array([a["interval"] for a in answers]).T
    assert (low < values).all() and (values < high).all()


@pytest.mark.parametrize("which", ["digits", "topics"])
def test_serving_runtimes_are_measured_and_onnx_answers_alike(
    which: str,
    digits: tuple[StoredDataset, StoredDataset],
    digits_model: tuple[Classical, Path],
    topics_model: tuple[Classical, Path],
    tmp_path: Path,
) -> None:
    source = digits_model[1] if which == "digits" else topics_model[1]
    artifact_dir = Path(shutil.copytree(source, tmp_path / "v1"))
    inputs: list[bytes] | list[str]
    if which == "digits":
        inputs = [path.read_bytes() for path in image_files(digits[1])[:64]]
    else:
        inputs = _texts(topics_model[0].dataset)[:64]
    report = prepare_serving(artifact_dir, inputs, None, candidates=("torch", "onnx_fp32"))
    assert report["candidates"]["onnx_fp32"]["status"] == "ok", report["candidates"]
    assert (artifact_dir / ONNX_FILES["onnx_fp32"]).is_file()
    torch_raw = load_predictor(artifact_dir, runtime="torch")
    onnx_raw = load_predictor(artifact_dir, runtime="onnx_fp32")
    np.testing.assert_allclose(
        onnx_raw.forward(onnx_raw.preprocess(inputs)),
        torch_raw.forward(torch_raw.preprocess(inputs)),
        rtol=1e-4,
        atol=1e-4,
    )
    chosen = load_predictor(artifact_dir)  # the runtime config.json now names
    assert chosen.runtime == report["chosen"]
