"""Tiny learnable stored datasets, tiny backbones and recording hooks for the engine's tests."""

import hashlib
import io
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image

from ml.backbones.spec import BackboneSpec
from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID, test_catalog_entries
from ml.datasets.manifest import FORMAT, encode_manifest
from ml.device import torch_threads
from ml.training import run
from ml.training.spec import StopReason, TrainSpec

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 230)}
TOPICS = {
    "food": ["pizza", "pasta", "bread", "cheese", "soup"],
    "sport": ["football", "tennis", "goal", "match", "team"],
    "tech": ["computer", "software", "laptop", "code", "chip"],
}
FILLER = ["the", "a", "today", "really", "we", "some", "new", "about", "very", "my"]


def write_stored(
    root: Path,
    task: str,
    header: dict[str, Any],
    rows: Sequence[tuple[dict[str, Any], str | bytes]],
) -> Path:
    """A stored dataset as ingest writes it: content-addressed files, sha256-named directory.

    ``header`` holds the task's manifest fields; each row is (its target fields, content).
    """
    files: dict[str, bytes] = {}
    examples = []
    for i, (target, content) in enumerate(rows):
        example: dict[str, Any] = {**target, "source": f"row {i}"}
        if isinstance(content, bytes):
            name = f"files/{hashlib.sha256(content).hexdigest()}.png"
            files[name] = content
            example["file"] = name
        else:
            example["text"] = content
        examples.append(example)
    manifest = {"format": FORMAT, "task": task, **header, "examples": examples}
    payload, sha = encode_manifest(manifest)
    directory = root / sha
    (directory / "files").mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_bytes(payload)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def write_dataset(
    root: Path,
    task: str,
    rows: Sequence[tuple[Sequence[str], str | bytes]],
    *,
    multilabel: bool = False,
) -> Path:
    """A stored classification dataset."""
    labels_seen = sorted({label for labels, _ in rows for label in labels})
    header = {"multilabel": multilabel, "labels": labels_seen}
    return write_stored(root, task, header, [({"labels": sorted(y)}, x) for y, x in rows])


def squares_png(colours: Sequence[tuple[int, int, int]], rng: random.Random) -> bytes:
    """Coloured squares at random places on grey noise: learnable, never two alike."""
    size = 40
    pixels = np.asarray(
        [[[rng.randint(90, 160)] * 3 for _ in range(size)] for _ in range(size)], dtype=np.uint8
    )
    for colour in colours:
        side = rng.randint(size // 3, size // 2) if len(colours) > 1 else rng.randint(20, 36)
        top, left = rng.randint(0, size - side), rng.randint(0, size - side)
        pixels[top : top + side, left : left + side] = colour
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def image_rows(per_class: int, seed: int = 0) -> list[tuple[Sequence[str], str | bytes]]:
    rng = random.Random(seed)
    return [
        ([label], squares_png([colour], rng))
        for label, colour in COLOURS.items()
        for _ in range(per_class)
    ]


def topic_text(topics: Sequence[str], rng: random.Random) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 8))]
    for topic in topics:
        for _ in range(2):
            words.insert(rng.randint(0, len(words)), rng.choice(TOPICS[topic]))
    return " ".join(words)


def text_rows(
    per_class: int, seed: int = 0, counts: dict[str, int] | None = None, noise: float = 0.0
) -> list[tuple[Sequence[str], str | bytes]]:
    """Texts with two keywords of their topic; `noise` of them get a random label instead."""
    rng = random.Random(seed)
    counts = counts or {topic: per_class for topic in TOPICS}
    rows: list[tuple[Sequence[str], str | bytes]] = []
    for topic, n in counts.items():
        for _ in range(n):
            label = rng.choice(list(TOPICS)) if rng.random() < noise else topic
            rows.append(([label], topic_text([topic], rng)))
    return rows


def multilabel_image_rows(n: int, seed: int = 0) -> list[tuple[Sequence[str], str | bytes]]:
    """Each image shows one or two of the colours; its labels are the colours it shows."""
    rng = random.Random(seed)
    rows: list[tuple[Sequence[str], str | bytes]] = []
    for _ in range(n):
        chosen = [c for c in COLOURS if rng.random() < 0.4] or [rng.choice(list(COLOURS))]
        chosen = chosen[:2]
        rows.append((chosen, squares_png([COLOURS[c] for c in chosen], rng)))
    return rows


@pytest.fixture(scope="session")
def backbones() -> dict[str, BackboneSpec]:
    specs = {entry["id"]: BackboneSpec(**entry) for entry in test_catalog_entries()}
    return {"image": specs[TINY_IMAGE_ID], "text": specs[TINY_TEXT_ID]}


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(
        tmp_path_factory.mktemp("ds"), "image_classification", image_rows(per_class=20)
    )


@pytest.fixture(scope="session")
def text_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ds"), "text_classification", text_rows(30))


@dataclass
class Recorder:
    """TrainHooks that remember everything; should_stop answers from a script."""

    stop_at: dict[int, StopReason] = field(default_factory=dict)  # poll number -> answer
    events: list[dict[str, Any]] = field(default_factory=list)
    progress_calls: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    checkpoints: list[Path] = field(default_factory=list)

    def event(
        self,
        level: Literal["info", "warn", "error"],
        message: str,
        *,
        type: Literal["message", "metrics"] = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        json.dumps(data)  # the worker stores it as JSON: it must serialise
        self.events.append({"level": level, "message": message, "type": type, "data": data})

    def progress(self, **kwargs: Any) -> None:
        self.progress_calls.append(kwargs)

    def should_stop(self) -> StopReason | None:
        self.polls += 1
        return self.stop_at.get(self.polls)

    def checkpoint_saved(self, directory: Path) -> None:
        self.checkpoints.append(directory)

    def of(self, level: str | None = None, type: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if (level is None or e["level"] == level) and (type is None or e["type"] == type)
        ]


MakeSpec = Callable[..., TrainSpec]


@pytest.fixture
def make_spec(tmp_path: Path, backbones: dict[str, BackboneSpec], shared_cache: Path) -> MakeSpec:
    """TrainSpec for a dataset with small, fast defaults; keywords override any field."""

    def make(dataset_dir: Path, backbone: str = "image", **overrides: Any) -> TrainSpec:
        hp = {"image_size": 32, "batch_size": 16} if backbone == "image" else {"batch_size": 16}
        values: dict[str, Any] = {
            "dataset_dir": dataset_dir,
            "backbone": backbones[backbone],
            "work_dir": tmp_path / "job",
            "cache_dir": shared_cache,
            "hyperparameters": hp,
            "device": "cpu",
        }
        values.update(overrides)
        return TrainSpec(**values)

    return make


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and on a loaded machine every parallel
    region waits for a descheduled thread; one thread keeps these tests' timing stable."""
    monkeypatch.setattr(run, "configure_threads", lambda: 1)
    with torch_threads(1):
        yield
