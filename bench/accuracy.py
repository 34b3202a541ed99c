"""Held-out accuracy of Hone's training methods on real data, beside bare baselines.

Four datasets (bench/accuracy_data.py): Fashion-MNIST and scikit-learn's 8x8 digits (images,
EfficientNet-Lite0), tweet sentiment and BBC News topics (text, MiniLM-L6). Each method trains
through the service's own path (zip/CSV -> ingest -> run_training -> artifact) and is scored on
a held-out test set through the serving path (load_predictor). The baselines, measured in the
same run, are what a practitioner would write by hand, fitted on every training example (the
service holds a fifth out for validation): frozen features from the same backbone (mean-pooled
for text) + scikit-learn LogisticRegression, with C=1 and with C by 5-fold CV; and the classical
model a careful practitioner tries first, with no backbone at all: LogisticRegressionCV on the
raw pixels, or on TF-IDF of the words. The verdict holds `auto` against the CV-tuned features
baseline: test accuracy points and the train-time ratio, against each dataset's goal.

    python -m bench.accuracy                  # the full run (about an hour on 2 busy CPU cores)
    python -m bench.accuracy --quick          # smoke run (2 fine-tuning epochs, small sets)
    python -m bench.accuracy --datasets digits,bbc_news --methods auto --device cuda
"""

import argparse
import io
import json
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from PIL import Image
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from timm.data import create_transform

from bench.accuracy_data import DATASETS, Benchmark, Dataset, Inputs
from bench.accuracy_report import (
    CV_BASELINE,
    Row,
    candidate_tables,
    number_or_dash,
    render,
    verdict,
)
from bench.common import (
    add_run_arguments,
    ingest_upload,
    load_average,
    machine_description,
    quiet_libraries,
    train_fresh,
)
from ml.backbones.catalog import load_catalog
from ml.backbones.factory import build_image_model, build_text_model
from ml.backbones.spec import BackboneSpec
from ml.device import configure_threads, pick_device
from ml.inference.predictor import load_predictor
from ml.tasks import PredictOptions
from ml.training.spec import Method


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


def _fit(pipeline: Pipeline, inputs: Any, labels: Sequence[str]) -> float:
    """Seconds to fit."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        # scikit-learn 1.9 announces changes to defaults we do not rely on.
        warnings.simplefilter("ignore", FutureWarning)
        pipeline.fit(inputs, list(labels))
    return time.perf_counter() - started


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
        CV_BASELINE: LogisticRegressionCV(Cs=10, max_iter=3000),
    }
    rows = []
    for name, classifier in classifiers.items():
        pipeline = make_pipeline(StandardScaler(), classifier)
        fit_s = _fit(pipeline, train_x, bench.train_labels)
        started = time.perf_counter()
        predicted = list(pipeline.predict(test_x))
        predict_s = test_features_s + time.perf_counter() - started
        accuracy, macro_f1 = _scores(bench.test_labels, predicted)
        row = Row(bench.name, name, "-", features_s + fit_s, predict_s, accuracy, macro_f1, None)
        rows.append(row)
    return rows


class PixelVector(TransformerMixin, BaseEstimator):
    """Encoded images -> their grey levels in [0, 1], one flat vector each, at the training
    images' median side (at most ``max_side`` px): the input of a linear model on raw pixels."""

    def __init__(self, max_side: int = 32) -> None:
        self.max_side = max_side

    def fit(self, images: Sequence[bytes], y: Any = None) -> "PixelVector":
        sides = [min(Image.open(io.BytesIO(data)).size) for data in images]
        self.side_ = int(min(self.max_side, np.median(sides)))
        return self

    def transform(self, images: Sequence[bytes]) -> np.ndarray:
        size = (self.side_, self.side_)
        return np.stack([
            np.asarray(
                Image.open(io.BytesIO(data)).convert("L").resize(size, Image.Resampling.BOX),
                dtype=np.float32,
            ).ravel() / 255
            for data in images
        ])  # fmt: skip


def classical_pipeline(modality: str) -> tuple[str, Pipeline]:
    """(row name, unfitted pipeline) of the cheap model a practitioner tries first."""
    classifier = LogisticRegressionCV(Cs=10, max_iter=3000)
    if modality == "image":
        return "classical: raw pixels + LR (C by 5-fold CV)", make_pipeline(
            PixelVector(), StandardScaler(), classifier
        )
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2))
    return "classical: TF-IDF + LR (C by 5-fold CV)", make_pipeline(vectorizer, classifier)


def classical_row(bench: Benchmark) -> Row:
    """The classical model from the raw inputs: decoding or vectorizing is in its times."""
    name, pipeline = classical_pipeline(bench.modality)
    train_s = _fit(pipeline, list(bench.train_inputs), bench.train_labels)
    started = time.perf_counter()
    predicted = list(pipeline.predict(list(bench.test_inputs)))
    predict_s = time.perf_counter() - started
    accuracy, macro_f1 = _scores(bench.test_labels, predicted)
    return Row(bench.name, name, "-", train_s, predict_s, accuracy, macro_f1, None)


def served_predictions(artifact_dir: Path, inputs: Inputs, device: torch.device) -> list[str]:
    """Labels through the serving path: the artifact loaded as the API loads it."""
    predictor = load_predictor(artifact_dir, device=device.type)
    predicted = []
    for batch in _batches(inputs, _batch_size(predictor.modality, device)):
        predicted += [p["label"] for p in predictor.predict(batch, PredictOptions(top_k=1))]
    return predicted


def _reported(metrics: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(candidates, plan) of the job's metrics; empty from an engine that reports neither."""
    listed = metrics.get("candidates")
    candidates = (
        [dict(c) for c in listed if isinstance(c, dict)] if isinstance(listed, list) else []
    )
    plan = metrics.get("plan")
    return candidates, dict(plan) if isinstance(plan, dict) else None


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
    candidates, plan = _reported(outcome.metrics)
    return Row(
        data=bench.name,
        method=method,
        kept=outcome.method,
        train_s=trained.train_seconds + trained.save_seconds,
        predict_s=predict_s,
        accuracy=accuracy,
        macro_f1=macro_f1,
        val_macro_f1=float(outcome.metrics["macro_f1"]),
        candidates=candidates,
        plan=plan,
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
        f"{len(set(bench.train_labels))} classes, {spec.id}; "
        f"ingest {time.perf_counter() - started:.2f} s",
        flush=True,
    )
    yield from baseline_rows(bench, spec, device, out)
    yield classical_row(bench)
    for method in methods:
        yield service_row(bench, dataset.path, spec, method, device, out, options)


def _methods(text: str) -> list[Method]:
    methods = [m for m in get_args(Method) if m in text.split(",")]
    unknown = set(text.split(",")) - set(methods)
    if unknown:
        raise SystemExit(f"unknown method(s) {sorted(unknown)}; known: {list(get_args(Method))}")
    return sorted(methods, key=text.split(",").index)


def _datasets(text: str, modality: str = "both") -> list[Dataset]:
    """The named datasets in the order given, less those of the other modality."""
    known = {d.name: d for d in DATASETS}
    names = text.split(",")
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown dataset(s) {unknown}; known: {list(known)}")
    return [known[n] for n in dict.fromkeys(names) if modality in ("both", known[n].modality)]


def _test_size(text: str) -> int:
    """A test-size flag: a count, or "all" (0) for every example not trained on."""
    if text == "all":
        return 0
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'{text!r}: a positive count, or "all"')
    return int(text)


# The flags of Fashion-MNIST and the tweets before there were four datasets.
_OLD_FLAGS = {"fashion_mnist": ("--image-per-class", "--image-test"),
              "tweets": ("--text-train", "--text-test")}  # fmt: skip


def _add_size_arguments(parser: argparse.ArgumentParser) -> None:
    for d in DATASETS:
        flag = "--" + d.name.replace("_", "-")
        old = _OLD_FLAGS.get(d.name)
        old_train, old_test = ([old[0]], [old[1]]) if old else ([], [])
        unit = "training examples per class" if d.train_per_class else "training examples"
        full, quick = d.test
        parser.add_argument(
            f"{flag}-train", *old_train, type=int, dest=f"{d.name}_train", metavar="N",
            help=f"{d.name}: {unit} ({d.train[0]}; --quick {d.train[1]})",
        )  # fmt: skip
        parser.add_argument(
            f"{flag}-test", *old_test, type=_test_size, dest=f"{d.name}_test", metavar="N",
            help=f'{d.name}: test examples, or "all" ({full or "all"}; --quick {quick or "all"})',
        )  # fmt: skip


def load_dataset(d: Dataset, args: argparse.Namespace) -> Benchmark:
    """The dataset at the sizes of the command line, else of the run (--quick or full)."""
    at = 1 if args.quick else 0
    train = getattr(args, f"{d.name}_train") or d.train[at]
    test = getattr(args, f"{d.name}_test")
    return d.load(train, d.test[at] if test is None else (test or None), args.seed, args.out)


def _report(row: Row) -> str:
    line = f"  {row.method}: accuracy {row.accuracy:.4f} ({row.train_s:.0f} s)"
    if row.kept != "-":
        line += f", kept {row.kept}"
    tried = ", ".join(
        f"{c.get('name')} {c.get('status')} ({number_or_dash(c.get('seconds'), 0)} s)"
        for c in row.candidates
    )
    return line + (f"; candidates: {tried}" if tried else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, Path("bench/out/accuracy"), "comma-separated training methods")
    names = ",".join(d.name for d in DATASETS)
    parser.add_argument("--datasets", default=names, help=f"comma-separated, of {names}")
    _add_size_arguments(parser)
    args = parser.parse_args()
    datasets = _datasets(args.datasets, args.modality)
    methods = _methods(args.methods)
    if args.quick and args.epochs is None:
        args.epochs = 2
    device = pick_device(args.device)
    configure_threads()
    quiet_libraries()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    print(f"{machine_description()}; {load_average()}", flush=True)

    started = time.perf_counter()
    rows: list[Row] = []
    for dataset in datasets:
        for row in run_benchmark(load_dataset(dataset, args), methods, device, args.out, args):
            rows.append(row)
            print(_report(row), flush=True)
            # Kept current, so a long run that is cut short still leaves what it measured.
            (args.out / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    print()
    print(render(rows))
    tables = candidate_tables(rows)
    if tables:
        print()
        print(tables)
    print()
    print("\n".join(verdict(rows, {d.name: d.goal_points for d in datasets})))
    print(f"total {time.perf_counter() - started:.0f} s; at the end {load_average()}")


if __name__ == "__main__":
    main()
