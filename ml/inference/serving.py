"""Choosing how a new model version is served: export, measure against torch, record the pick.

Run by the worker on a staged artifact, before the registry marks the version ready. Every
candidate runtime answers the same validation inputs; the fastest one whose answers stay
within tolerance of eager torch is written into config.json for load_predictor to use.
"""

import json
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import numpy as np

from ml.artifacts import CONFIG_FILE, LoadedArtifact, load_artifact
from ml.inference.backends import Backend, Batch, OnnxBackend, TorchBackend
from ml.inference.onnx_export import ONNX_FILES, export_onnx, quantize_int8
from ml.inference.predictor import Predictor, predictor_from_parts, read_config
from ml.inference.threads import configure_threads
from ml.tasks import ServingHead

DEFAULT_CANDIDATES = ("torch", "onnx_fp32", "onnx_int8")
BASELINE = "torch"
SINGLE_CALLS = 16  # timed batch-1 forwards
BATCH_SIZE = 8
BATCH_CALLS = 4  # timed batch-8 forwards
_EXPORT_TEXTS = ["ok", "a longer sentence, so that the export sample holds some padding"]


def prepare_serving(
    artifact_dir: Path,
    val_inputs: Sequence[bytes] | Sequence[str],
    val_truth: Sequence[Any] | None,
    *,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    max_accuracy_drop: float = 0.005,
    max_abs_diff: float = 0.05,
    max_examples: int = 256,
) -> dict[str, Any]:
    """Export ONNX files next to model.safetensors, measure every candidate, pick, record.

    ``val_truth`` is what the task's head scores accuracy against (label indices of a
    single-label classifier); None where there is no accuracy (multi-label, regression,
    unlabelled inputs): agreement with torch then stands in for it. ``max_abs_diff`` bounds
    how far a candidate's postprocessed values may be from torch's: in probability for
    classifiers, in standard deviations of each target for regression. A candidate that fails
    to export or run is skipped with its reason; torch is the fallback choice. Writes
    ``runtime`` and ``runtime_report`` into config.json (atomically) and returns the report.
    """
    if not val_inputs:
        raise ValueError("prepare_serving needs at least one validation input")
    artifact = load_artifact(artifact_dir)
    threads = configure_threads()
    baseline = predictor_from_parts(
        artifact.config,
        TorchBackend(artifact.model),
        artifact.tokenizer,
        runtime=BASELINE,
        artifact_dir=artifact.path,
    )
    # Evenly spaced, not the first N: validation sets are often ordered by label.
    count = min(max_examples, len(val_inputs))
    picked = np.unique(np.linspace(0, len(val_inputs) - 1, count).round().astype(int))
    inputs = [val_inputs[int(i)] for i in picked]
    truth = None if val_truth is None else [val_truth[int(i)] for i in picked]
    batches = _ValidationBatches(baseline, inputs)
    reference = _evaluate(baseline, batches)
    sample = _export_sample(baseline, inputs)
    results: dict[str, dict[str, Any]] = {}
    for runtime in dict.fromkeys([BASELINE, *candidates]):
        try:
            if runtime == BASELINE:
                result = reference
            else:
                result = _evaluate(_load(runtime, artifact, sample, threads), batches)
            results[runtime] = _compare(baseline.head, result, reference, truth)
        except Exception as exc:  # an export problem must never fail the job
            results[runtime] = {"status": "skipped", "reason": f"{type(exc).__name__}: {exc}"}
    chosen, reason = _choose(results, candidates, max_accuracy_drop, max_abs_diff)
    report = {
        "chosen": chosen,
        "reason": reason,
        "baseline": BASELINE,
        "examples": len(inputs),
        "threads": threads,
        "criteria": {"max_accuracy_drop": max_accuracy_drop, "max_abs_diff": max_abs_diff},
        "candidates": results,
    }
    _rewrite_config(artifact_dir, {"runtime": chosen, "runtime_report": report})
    return report


class _ValidationBatches:
    """Validation inputs preprocessed once, shared by every candidate."""

    def __init__(self, predictor: Predictor, inputs: list[Any]) -> None:
        self.all = [
            predictor.preprocess(inputs[i : i + BATCH_SIZE])
            for i in range(0, len(inputs), BATCH_SIZE)
        ]
        self.singles = [predictor.preprocess([x]) for x in inputs[:SINGLE_CALLS]]
        tiled = list(islice(cycle(inputs), BATCH_SIZE * BATCH_CALLS))
        self.eights = [
            predictor.preprocess(tiled[i : i + BATCH_SIZE])
            for i in range(0, len(tiled), BATCH_SIZE)
        ]


def _load(runtime: str, artifact: LoadedArtifact, sample: Batch, threads: int) -> Predictor:
    backend: Backend
    if runtime == "torch_compile":
        backend = TorchBackend(artifact.model, compile=True)
    elif runtime in ONNX_FILES:
        backend = OnnxBackend(_exported(runtime, artifact, sample), threads=threads)
    else:
        raise ValueError(f"unknown runtime {runtime!r}")
    return predictor_from_parts(
        artifact.config, backend, artifact.tokenizer, runtime=runtime, artifact_dir=artifact.path
    )


def _exported(runtime: str, artifact: LoadedArtifact, sample: Batch) -> Path:
    """The runtime's ONNX file, exported (int8: via the fp32 graph) unless already there."""
    dest = artifact.path / ONNX_FILES[runtime]
    if dest.is_file():
        return dest
    # Written under a temporary name and moved into place, so a failed export leaves no file
    # that load_predictor could mistake for a finished one.
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
    try:
        if runtime == "onnx_int8":
            quantize_int8(_exported("onnx_fp32", artifact, sample), tmp)
        else:
            export_onnx(artifact.model, sample, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _export_sample(predictor: Predictor, inputs: list[Any]) -> Batch:
    """Two rows to trace with; texts of different lengths so the graph sees padding."""
    return predictor.preprocess(_EXPORT_TEXTS if predictor.modality == "text" else inputs[:1] * 2)


def _evaluate(predictor: Predictor, batches: _ValidationBatches) -> dict[str, Any]:
    # The full pass comes first and doubles as warm-up (session allocations, compilation).
    values = np.concatenate([predictor.postprocess(predictor.forward(b)) for b in batches.all])
    predictor.forward(batches.eights[0])
    return {
        "values": values,
        "latency_ms": {
            "batch_1": _median_ms(predictor, batches.singles),
            "batch_8": _median_ms(predictor, batches.eights),
        },
    }


def _median_ms(predictor: Predictor, batches: list[Batch]) -> float:
    times = []
    for batch in batches:
        start = time.perf_counter()
        predictor.forward(batch)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 3)


def _compare(
    head: ServingHead,
    result: dict[str, Any],
    reference: dict[str, Any],
    truth: Sequence[Any] | None,
) -> dict[str, Any]:
    """The candidate's latency and how its answers compare with torch's (``agreement``,
    ``max_abs_diff``), by the task's own measure."""
    return {
        "status": "ok",
        "latency_ms": result["latency_ms"],
        "accuracy": head.accuracy(result["values"], truth),
        **head.compare(result["values"], reference["values"]),
    }


def _choose(
    results: dict[str, dict[str, Any]],
    candidates: Sequence[str],
    max_accuracy_drop: float,
    max_abs_diff: float,
) -> tuple[str, str]:
    """The lowest batch-1 latency among candidates that keep torch's answers.

    Batch-1 latency ranks because on CPU batching barely raises throughput
    (docs/measurements.md), so most forwards in serving are small batches.
    """
    base = results[BASELINE]
    eligible = []
    for runtime in candidates:
        result = results[runtime]
        if result["status"] != "ok":
            continue
        if base["accuracy"] is not None:
            result["eligible"] = result["accuracy"] >= base["accuracy"] - max_accuracy_drop
        else:
            result["eligible"] = result["agreement"] >= 1 - max_accuracy_drop
        result["eligible"] = result["eligible"] and result["max_abs_diff"] <= max_abs_diff
        if result["eligible"]:
            eligible.append(runtime)
    if not eligible:
        return BASELINE, "no candidate kept torch's accuracy; serving eager torch"
    chosen = min(eligible, key=lambda r: results[r]["latency_ms"]["batch_1"])
    return chosen, f"fastest at batch 1 of {eligible} within tolerance of torch"


def _rewrite_config(artifact_dir: Path, updates: dict[str, Any]) -> None:
    path = artifact_dir / CONFIG_FILE
    config = read_config(artifact_dir) | updates
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps(config, indent=2))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
