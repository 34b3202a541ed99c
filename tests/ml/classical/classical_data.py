"""Uploads ingested the way users send them, and a classical model fitted on them the way the
trainer does it: featurizer, the task's cross-fitted probe, install_head, the artifact."""

import csv
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits

from ml.artifacts import save_artifact
from ml.backbones.spec import BackboneSpec
from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID, test_catalog_entries
from ml.classical import ClassicalFeaturizer, classical_candidate
from ml.datasets.ingest import ingest
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.store import StoredDataset, load_dataset
from ml.tasks import Fitted, ProbeFit, get_task
from ml.training.outcome import TrainOutcome
from ml.training.probe import install_head
from tests.factories.uploads import write_zip

TOPICS = {
    "food": ["pizza", "pasta", "bread", "cheese", "soup", "salad"],
    "sport": ["football", "tennis", "goal", "match", "team", "race"],
    "tech": ["computer", "software", "laptop", "code", "chip", "server"],
}
FILLER = ["the", "a", "today", "really", "we", "some", "new", "about", "very", "my", "café"]


def ingest_upload(upload: Path, task: str, root: Path, **options: str) -> StoredDataset:
    opts = IngestOptions(task=task, filename=upload.name, **options)  # type: ignore[arg-type]
    result = ingest(upload, opts, IngestLimits(), root / "datasets", root / "scratch")
    return load_dataset(result.path)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def digits_split(num_train: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, held-out) indices into scikit-learn's 1,797 digits."""
    order = np.random.default_rng(seed).permutation(len(load_digits().target))
    return order[:num_train], order[num_train:]


def digits_images(rows: np.ndarray) -> tuple[list[bytes], list[str]]:
    """The digits at their own 8x8, as greyscale PNGs, and their labels."""
    digits = load_digits()
    pixels = (digits.images[rows] * 255 / 16).round().astype(np.uint8)
    return [png(p) for p in pixels], [str(int(t)) for t in digits.target[rows]]


def folder_zip(path: Path, images: list[bytes], labels: list[str], ext: str = "png") -> Path:
    """The folder-per-label upload: ``<label>/<index>.<ext>``."""
    entries = {
        f"{label}/{i:05d}.{ext}": data
        for i, (data, label) in enumerate(zip(images, labels, strict=True))
    }
    return write_zip(path, entries)


def topic_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, topic): a few filler words and two words of the topic, each text different."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        words += rng.sample(TOPICS[topic], 2)
        rng.shuffle(words)
        rows.append((" ".join(words) + f" n{i}", topic))
    return rows


def write_csv(path: Path, header: list[str], rows: Sequence[tuple[object, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def backbone(modality: str) -> BackboneSpec:
    """The job's backbone: a classical model records none of it, whatever it was."""
    specs = {entry["id"]: BackboneSpec(**entry) for entry in test_catalog_entries()}
    return specs[TINY_IMAGE_ID if modality == "image" else TINY_TEXT_ID]


@dataclass
class Classical:
    dataset: StoredDataset  # what it was fitted on
    featurizer: ClassicalFeaturizer
    fitted: Fitted
    fit: ProbeFit
    targets: torch.Tensor  # in the task's training form
    outcome: TrainOutcome


def fit_classical(dataset: StoredDataset, seed: int = 0) -> Classical:
    """Every example fits the featurizer and the probe (cross-fitted), as a job without a
    validation dataset does; the head refitted on all of them is the model."""
    task = get_task(dataset.task)
    names = task.names(dataset)
    targets = task.encode(dataset, names)
    rows = np.arange(len(targets))
    featurizer = classical_candidate(task.modality, dataset, rows)
    features = featurizer.features(dataset)
    fitted = task.fit_targets(targets, names)
    targets = fitted.transform(targets)
    fit = task.probe(features, targets, rows, fitted, seed=seed)
    model = featurizer.build_model(fitted.num_outputs)
    install_head(model, fit.weight, fit.bias)
    fitted.kept = "classical"
    metrics, task_config = task.final_report(fit.oof.float(), targets, fitted)
    outcome = TrainOutcome(
        model=model.eval(),
        tokenizer=None,
        task=task.name,
        labels=fitted.names,
        task_config=task_config,
        metrics=metrics,
        hyperparameters={},
        method="classical",
        method_reason="the classical candidate",
        class_weights=fitted.class_weights,
        preprocessing=featurizer.preprocessing(),
        backbone_weights_sha256="",
        resumed_from_step=None,
        library="classical",
        artifact_files=featurizer.artifact_files(),
    )
    return Classical(dataset, featurizer, fitted, fit, targets, outcome)


def save(classical: Classical, dest: Path) -> Path:
    """The artifact as the worker writes it."""
    outcome = classical.outcome
    config = outcome.artifact_config(backbone(get_task(outcome.task).modality), {})
    save_artifact(dest, outcome.model, config, outcome.tokenizer, files=outcome.artifact_files)
    return dest


def in_memory_outputs(classical: Classical, dataset: StoredDataset) -> np.ndarray:
    """The fitted model's raw outputs on a dataset's examples, without any artifact."""
    with torch.no_grad():
        return classical.outcome.model(classical.featurizer.features(dataset)).numpy()
