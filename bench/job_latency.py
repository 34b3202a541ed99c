"""Time from `POST /v1/jobs` to the job's first optimizer step, minus the backbone's load.

Against real `hone api` and `hone worker` processes: a dataset of Fashion-MNIST PNGs is
uploaded once, then jobs on EfficientNet-Lite0 are posted one after another. The client notes
the time just before each POST; the engine records timed events (`phase`: `model_load`,
`data_preparation`, `features`, and `first_step`, see ml/training/reporting.py), written by
the worker as they happen. Per job:

    latency = first_step event time - POST time - model_load seconds

split into pickup (POST until the worker's "attempt started" event: API, queue, broker, fork),
setup (reading the dataset, resolving hyperparameters), data preparation and frozen features.
Jobs are posted `--gap` seconds after the previous one ended, to an idle worker; with
`--gap 0` a job waits for the worker to replace the finished job's process (one job per
process), about 0.3 s here. The first job on a dataset is cold (images decoded and features
computed); the later ones
find both cached, which is what a user re-running a job (new hyperparameters, another
method) gets. The bare baseline, in this process: the same `run_training` called directly
on the same stored dataset and cache, with the same subtraction; the difference between the
two is what the service adds.

    python -m bench.job_latency                          # embedded: SQLite + filesystem broker
    python -m bench.job_latency --postgres --redis       # PostgreSQL + Redis, as in production
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    FASHION_MNIST_LABELS,
    EventLog,
    fashion_mnist,
    load_average,
    machine_description,
    markdown_table,
    per_class_sample,
    png_bytes,
    quiet_libraries,
    write_image_zip,
)
from bench.service import ROOT, Service, upload_dataset, wait_for_job

PHASES = ("model_load", "data_preparation", "features")


def _timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["created_at"].replace("Z", "+00:00")).timestamp()


def job_events(service: Service, job_id: str) -> list[dict[str, Any]]:
    """Every event of the job, oldest first (the list pages newest first)."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = httpx.get(
            f"{service.url}/v1/jobs/{job_id}/events", headers=service.headers, params=params
        ).json()
        events += page["data"]
        if not page.get("has_more"):
            return events[::-1]
        params["after"] = page["data"][-1]["id"]


def measure_job(service: Service, dataset_id: str, seed: int) -> dict[str, float]:
    body = {
        "dataset_id": dataset_id,
        "backbone": "efficientnet_lite0",
        "model_name": f"latency-{seed}",
        "method": "linear_probe",
        "seed": seed,
    }
    posted = time.time()
    resp = httpx.post(f"{service.url}/v1/jobs", headers=service.headers, json=body)
    resp.raise_for_status()
    job_id = resp.json()["id"]
    wait_for_job(service, job_id, poll_s=0.2)
    events = job_events(service, job_id)
    seconds = {e["data"]["phase"]: e["data"]["seconds"] for e in events if _phase(e) in PHASES}
    started = next(e for e in events if e["message"].startswith("attempt "))
    first_step = next(e for e in events if _phase(e) == "first_step")
    until_first = _timestamp(first_step) - posted
    pickup = _timestamp(started) - posted
    return {
        "latency_s": until_first - seconds["model_load"],
        "pickup_s": pickup,
        "model_load_s": seconds["model_load"],
        "data_preparation_s": seconds["data_preparation"],
        "features_s": seconds["features"],
        "setup_s": until_first - pickup - sum(seconds[p] for p in PHASES),
    }


def _phase(event: dict[str, Any]) -> str | None:
    return (event.get("data") or {}).get("phase")


def in_process(dataset_dir: Path, cache_dir: Path, work: Path, seed: int) -> dict[str, float]:
    """The bare baseline: run_training called directly, first step minus model load."""
    from ml.backbones.catalog import load_catalog
    from ml.training.run import run_training
    from ml.training.spec import TrainSpec

    backbone = load_catalog()["efficientnet_lite0"]
    spec = TrainSpec(
        dataset_dir=dataset_dir,
        backbone=backbone,
        work_dir=work,
        cache_dir=cache_dir,
        method="linear_probe",
        seed=seed,
    )
    hooks = EventLog()
    run_training(spec, hooks)
    at = {data.get("phase"): (t, data) for t, _level, _message, data in hooks.events}
    return {
        "latency_s": at["first_step"][0] - at["model_load"][1]["seconds"],
        "model_load_s": at["model_load"][1]["seconds"],
        "data_preparation_s": at["data_preparation"][1]["seconds"],
        "features_s": at["features"][1]["seconds"],
    }


def _backend_env(args: argparse.Namespace, tag: str) -> dict[str, str]:
    env: dict[str, str] = {}
    if args.postgres:
        import psycopg

        name = f"hone_bench_{tag}"
        with psycopg.connect(args.postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        env["HONE_DATABASE_URL"] = args.postgres_url.format(name=name)
    if args.redis:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
        env["HONE_BROKER_URL"] = args.redis_url
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="dataset size (10 labels)")
    parser.add_argument("--jobs", type=int, default=5, help="jobs after the cold one")
    parser.add_argument(
        "--gap",
        type=float,
        default=2.0,
        help="seconds between a job's end and the next POST: with a gap the next job finds "
        "an idle worker; 0 posts back to back, while the worker still replaces the finished "
        "job's process",
    )
    parser.add_argument("--postgres", action="store_true", help="registry on PostgreSQL")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    )
    parser.add_argument("--redis", action="store_true", help="Redis as the broker")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    quiet_libraries()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    backend += " + " + ("Redis" if args.redis else "filesystem broker")
    with tempfile.TemporaryDirectory(prefix="hone-latency-") as tmp_name:
        tmp = Path(tmp_name)
        images, labels = fashion_mnist("train")
        picked = per_class_sample(labels, max(1, args.images // 10), seed=0)
        upload = write_image_zip(
            tmp / "fashion.zip",
            [png_bytes(images[i]) for i in picked],
            [FASHION_MNIST_LABELS[labels[i]] for i in picked],
        )
        data_dir = tmp / "data"
        service = Service(
            data_dir, 19000 + os.getpid() % 1000, **_backend_env(args, str(os.getpid()))
        )
        try:
            service.migrate()
            service.run("worker")
            service.start_api()
            dataset = upload_dataset(service, upload, "image_classification")
            runs = []
            for seed in range(args.jobs + 1):
                time.sleep(args.gap)
                runs.append(measure_job(service, dataset["id"], seed))
        finally:
            service.close()
        dataset_dir = data_dir / "datasets" / dataset["sha256"]
        baseline = in_process(dataset_dir, data_dir / "cache", tmp / "work", seed=0)
    report(runs, baseline, f"{backend}; {args.gap:g} s between jobs", len(picked))


def report(
    runs: list[dict[str, float]], baseline: dict[str, float], backend: str, images: int
) -> None:
    cold, warm = runs[0], runs[1:]
    keys = ("latency_s", "pickup_s", "setup_s", "data_preparation_s", "features_s", "model_load_s")
    median = {k: statistics.median(r[k] for r in warm) for k in keys} if warm else {}
    print(f"\n{machine_description()}; {backend}; {images} images; {load_average()}\n")
    rows = [["cold (first job on the dataset)", *(f"{cold[k]:.3f}" for k in keys)]]
    if warm:
        rows.append([f"warm (median of {len(warm)})", *(f"{median[k]:.3f}" for k in keys)])
    rows.append(
        [
            "in-process run_training (warm cache)",
            f"{baseline['latency_s']:.3f}",
            "-",
            "-",
            f"{baseline['data_preparation_s']:.3f}",
            f"{baseline['features_s']:.3f}",
            f"{baseline['model_load_s']:.3f}",
        ]
    )
    headers = ["job", "POST→first step - load s", "pickup s", "setup s", "data prep s"]
    print(markdown_table([*headers, "features s", "model load s"], rows))
    if warm:
        added = median["latency_s"] - baseline["latency_s"]
        ratio = median["latency_s"] / max(baseline["latency_s"], 1e-9)
        print(
            f"\nwarm: {median['latency_s']:.3f} s from POST to the first optimizer step, model "
            f"load excluded (goal <= 0.5 s); the service adds {added:.3f} s over calling "
            f"run_training in-process ({ratio:.1f}x)"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "job_latency.json").write_text(
        json.dumps({"backend": backend, "runs": runs, "baseline": baseline}, indent=2)
    )


if __name__ == "__main__":
    main()
