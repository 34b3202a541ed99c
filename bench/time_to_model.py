"""Time to model: a zip of 500 labelled images -> a saved, servable linear-probe model.

The stages are the service's own, in the order the workers run them: ingest, run_training,
save_artifact, then the choice of serving runtime (prepare_serving) that precedes "ready";
run_training is broken down by timing the engine functions it calls.
Two jobs run: "cold" on an empty cache (a fresh install: the packaged weights are converted on
first use) and "warm" on the same cache with a different sample of images (a later job: the
weights are ready, but nothing about the new images is cached). The worker process's start-up
(importing torch, timm, transformers) is measured apart, since a running worker has paid it.

    python -m bench.time_to_model            # ~1-2 min on 2 CPU cores
    python -m bench.time_to_model --device cuda
"""

import argparse
import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import ml.tasks.classification.training
import ml.training.run
from bench.common import (
    FASHION_MNIST_LABELS,
    fashion_mnist,
    ingest_upload,
    load_average,
    machine_description,
    markdown_table,
    per_class_sample,
    png_bytes,
    quiet_libraries,
    train_and_save,
    write_image_zip,
)
from ml.backbones.catalog import load_catalog
from ml.backbones.spec import BackboneSpec
from ml.device import configure_threads
from ml.inference.predictor import load_predictor
from ml.inference.serving import prepare_serving
from workers.registration import SERVING_CANDIDATES
from workers.serving_inputs import serving_inputs

GOAL_SECONDS = 60.0
SAVED = "total: zip -> saved model"
READY = "total: zip -> ready to serve"
# Engine functions that ml.training.run calls, with the stage each one is.
_STAGES = {
    "load_job_data": "read dataset + validation split",
    "build_image_model": "build model (load weights)",
    "weights_sha256": "hash weights",
    "prepare_inputs": "decode + resize images",
    "extract_features": "frozen features",
}
# ...and the classification task's, which run_training calls through the task seam.
_TASK_STAGES = {
    "cross_fit": "cross-fit probe (L2 by 5-fold CV)",
    "final_report": "calibrate + out-of-fold report",
}


@contextmanager
def timed_calls(module: ModuleType, names: list[str]) -> Iterator[dict[str, float]]:
    """Seconds spent in each of ``module``'s named functions while the block runs.

    A name the module no longer has is left out, so an engine refactor shows up as time in
    "other" rather than as a crash.
    """
    totals: dict[str, float] = {}
    originals = {name: getattr(module, name) for name in names if hasattr(module, name)}

    def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - started

        return timed

    for name, function in originals.items():
        setattr(module, name, wrap(name, function))
    try:
        yield totals
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def import_seconds() -> float:
    """A fresh interpreter importing what a training worker needs."""
    started = time.perf_counter()
    command = "import ml.training.run, ml.artifacts, ml.datasets.ingest"
    subprocess.run([sys.executable, "-c", command], check=True)
    return time.perf_counter() - started


def one_job(
    upload: Path, spec: BackboneSpec, data_dir: Path, job_dir: Path, device: str
) -> tuple[dict[str, float], str]:
    """Seconds per stage of one upload -> ready model (with two running totals), and the
    serving runtime the job chose."""
    stages: dict[str, float] = {}
    started = time.perf_counter()
    dataset = ingest_upload(upload, "image_classification", data_dir)
    stages["ingest (unzip, decode-check, audit, store)"] = time.perf_counter() - started
    with (
        timed_calls(ml.training.run, list(_STAGES)) as inside,
        timed_calls(ml.tasks.classification.training, list(_TASK_STAGES)) as in_task,
    ):
        trained = train_and_save(
            dataset.path, spec, "linear_probe", job_dir, cache_dir=data_dir / "cache", device=device
        )
    stages |= {_STAGES[name]: seconds for name, seconds in inside.items()}
    stages |= {_TASK_STAGES[name]: seconds for name, seconds in in_task.items()}
    timed = sum(inside.values()) + sum(in_task.values())
    stages["run_training: other"] = trained.train_seconds - timed
    stages["save artifact"] = trained.save_seconds
    stages[SAVED] = time.perf_counter() - started
    # What the worker does next, before the registry marks the version ready
    # (workers/registration.py): export, measure and pick the serving runtime.
    runtime_started = time.perf_counter()
    val_inputs, val_labels = serving_inputs(trained.spec)
    report = prepare_serving(
        trained.artifact_dir, val_inputs, val_labels, candidates=SERVING_CANDIDATES
    )
    stages["choose serving runtime (ONNX export + timing)"] = time.perf_counter() - runtime_started
    stages[READY] = time.perf_counter() - started
    return stages, str(report["chosen"])


def serving_load_seconds(artifact_dir: Path, device: str) -> float:
    started = time.perf_counter()
    load_predictor(artifact_dir, device=device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=50, help="images per class (x10)")
    parser.add_argument("--device", default="cpu", help='"cpu", "cuda" or "auto"')
    parser.add_argument("--out", type=Path, default=Path("bench/out/time_to_model"))
    args = parser.parse_args()
    configure_threads()
    quiet_libraries()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    print(machine_description(), flush=True)

    spec = load_catalog()["efficientnet_lite0"]
    images, labels = fashion_mnist("train")
    columns: dict[str, dict[str, float]] = {}
    for run, seed in (("cold", 0), ("warm", 1)):
        picked = per_class_sample(labels, args.per_class, seed)
        upload = write_image_zip(
            args.out / f"upload-{run}.zip",
            [png_bytes(images[i]) for i in picked],
            [FASHION_MNIST_LABELS[labels[i]] for i in picked],
        )
        # Both jobs share one data directory (datasets, cache), as jobs on one install do.
        columns[run], runtime = one_job(
            upload, spec, args.out / "data", args.out / run, args.device
        )
        print(f"{run}: {columns[run][READY]:.1f} s (serving runtime chosen: {runtime})", flush=True)

    stages = dict.fromkeys([*columns["cold"], *columns["warm"]])
    rows = [
        [stage, *(f"{columns[run].get(stage, float('nan')):.2f}" for run in columns)]
        for stage in stages
    ]
    print()
    print(f"{10 * args.per_class} Fashion-MNIST images, efficientnet_lite0, linear_probe")
    print(markdown_table(["stage", "cold s", "warm s"], rows))
    print(f"worker start-up (imports), not in the totals: {import_seconds():.1f} s")
    artifact = args.out / "warm" / "model"
    print(
        f"loading the saved model for serving: {serving_load_seconds(artifact, args.device):.2f} s"
    )
    for total in (SAVED, READY):
        worst = max(column[total] for column in columns.values())
        verdict = "met" if worst < GOAL_SECONDS else "MISSED"
        print(f"goal under {GOAL_SECONDS:.0f} s, {total}: {verdict} (slowest {worst:.1f} s)")
    print(load_average())


if __name__ == "__main__":
    main()
