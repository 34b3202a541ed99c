"""Serving benchmark: a real uvicorn server on loopback with real trained versions.

Trains one version of each offline backbone through the service itself (upload → job on a
worker → registry): EfficientNet-Lite0 on Fashion-MNIST images and MiniLM-L6 on tweets, both
with the linear probe. Then, for each model, a closed-loop load (every client sends its next
request when the previous one answers) at concurrency 1, 16 and 64 reports predictions/s,
p50/p95/p99 latency and the batch sizes the batcher formed (from /metrics). Baselines measured
in the same run, in this process: the raw forward pass of the same predictor at the batch size
the server formed, and the whole in-process pipeline (decode/tokenize + forward + format).

    python -m bench.serve                  # ~6 min on 2 CPU cores
    python -m bench.serve --seconds 3      # quicker, noisier

The client shares the machine with the server: on 2 cores its own CPU use is part of what the
ratios show.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import (
    FASHION_MNIST_LABELS,
    fashion_mnist,
    machine_description,
    markdown_table,
    per_class_sample,
    png_bytes,
    tweet_splits,
    write_image_zip,
    write_text_csv,
)
from bench.service import ROOT, Service, train
from ml.inference.predictor import load_predictor


def _histogram(metrics: str, name: str, model: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram for one model label."""
    values = {}
    for kind in ("sum", "count"):
        pattern = rf'^{name}_{kind}\{{model="{re.escape(model)}"\}} (\S+)$'
        match = re.search(pattern, metrics, re.MULTILINE)
        values[kind] = float(match.group(1)) if match else 0.0
    return values["sum"], values["count"]


async def closed_loop(
    service: Service, name: str, bodies: Sequence[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, Any]:
    url = f"/v1/models/{name}/predict"
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=service.url, headers=service.headers, timeout=60, limits=limits
    ) as client:
        label = f"{name}:1"
        before = _histogram((await client.get("/metrics")).text, "hone_predict_batch_size", label)
        stop = time.perf_counter() + seconds

        async def client_loop(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < stop:
                start = time.perf_counter()
                resp = await client.post(url, json=bodies[i % len(bodies)])
                if resp.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(client_loop(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - began
        after = _histogram((await client.get("/metrics")).text, "hone_predict_batch_size", label)
    batches = after[1] - before[1]
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "predictions_per_s": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "errors": errors,
        "mean_batch": (after[0] - before[0]) / batches if batches else 0.0,
    }


def raw_throughput(
    artifact: Path, inputs: Sequence[Any], batch: int, seconds: float
) -> dict[str, float]:
    """The same predictor in this process: forward alone, and the whole pipeline."""
    predictor = load_predictor(artifact)
    prepared = [
        predictor.preprocess(inputs[i : i + batch])
        for i in range(0, len(inputs) - batch + 1, batch)
    ]
    predictor.forward(prepared[0])
    forward_times, pipeline_times = [], []
    stop = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < stop:
        start = time.perf_counter()
        predictor.forward(prepared[i % len(prepared)])
        forward_times.append(time.perf_counter() - start)
        chunk = inputs[(i * batch) % (len(inputs) - batch) :][:batch]
        start = time.perf_counter()
        predictor.format(predictor.probabilities(predictor.forward(predictor.preprocess(chunk))), 5)
        pipeline_times.append(time.perf_counter() - start)
        i += 1
    return {
        "batch": batch,
        "forward_per_s": batch / statistics.median(forward_times),
        "forward_p50_ms": statistics.median(forward_times) * 1000,
        "pipeline_per_s": batch / statistics.median(pipeline_times),
    }


def prepare_data(tmp: Path) -> tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]]:
    import base64

    images, labels = fashion_mnist("train")
    picked = per_class_sample(labels, 30, seed=0)
    image_zip = write_image_zip(
        tmp / "fashion.zip",
        [png_bytes(images[i]) for i in picked],
        [FASHION_MNIST_LABELS[labels[i]] for i in picked],
    )
    test_images, _ = fashion_mnist("t10k")
    image_bodies = [
        {"inputs": [{"image_base64": base64.b64encode(png_bytes(im)).decode()}]}
        for im in test_images[:256]
    ]
    train_rows, test_rows = tweet_splits(400, 256, seed=0)
    text_csv = write_text_csv(tmp / "tweets.csv", train_rows)
    text_bodies = [{"inputs": [text]} for text, _ in test_rows]
    return image_zip, text_csv, image_bodies, text_bodies


def raw_inputs(body: dict[str, Any]) -> Any:
    import base64

    item = body["inputs"][0]
    return base64.b64decode(item["image_base64"]) if isinstance(item, dict) else item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per load level")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep the service's data here and reuse the versions trained by an earlier run",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="hone-serve-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = args.data_dir or tmp / "data"
        image_zip, text_csv, image_bodies, text_bodies = prepare_data(tmp)
        service = Service(data_dir, 18000 + os.getpid() % 1000)
        try:
            service.migrate()
            service.start_api()
            if not list(data_dir.glob("models/*/tweets/1")):
                worker = service.run("worker")
                print("training the two versions through the service ...", flush=True)
                started = time.perf_counter()
                train(service, image_zip, "image_classification", "efficientnet_lite0", "fashion")
                train(service, text_csv, "text_classification", "minilm_l6", "tweets")
                print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
                service.stop(worker)
            results: dict[str, Any] = {"machine": machine_description(), "models": {}}
            for name, bodies in (("fashion", image_bodies), ("tweets", text_bodies)):
                (artifact,) = data_dir.glob(f"models/*/{name}/1")
                runtime = json.loads((artifact / "config.json").read_text()).get("runtime")
                loads = [
                    asyncio.run(closed_loop(service, name, bodies, c, args.seconds)) for c in levels
                ]
                inputs = [raw_inputs(b) for b in bodies]
                raws = {}
                for load in loads:
                    batch = max(1, round(load["mean_batch"]))
                    if batch not in raws:
                        raws[batch] = raw_throughput(artifact, inputs, batch, args.seconds / 2)
                    raw = raws[batch]
                    load["raw_forward_per_s"] = raw["forward_per_s"]
                    load["ratio_vs_forward"] = load["predictions_per_s"] / raw["forward_per_s"]
                    load["ratio_vs_pipeline"] = load["predictions_per_s"] / raw["pipeline_per_s"]
                one = next(x for x in loads if x["concurrency"] == 1) if 1 in levels else None
                overhead = one["p50_ms"] - raws[1]["forward_p50_ms"] if one and 1 in raws else None
                results["models"][name] = {
                    "runtime": runtime,
                    "loads": loads,
                    "overhead_p50_ms": overhead,
                }
            service.stop(service.api)
            service.env["HONE_MAX_BATCH_SIZE"] = "1"
            service.start_api()
            top = max(levels)
            for name, bodies in (("fashion", image_bodies), ("tweets", text_bodies)):
                results["models"][name]["batching_off"] = asyncio.run(
                    closed_loop(service, name, bodies, top, args.seconds)
                )
        finally:
            service.close()
    report(results, top)


def report(results: dict[str, Any], top: int) -> None:
    print(f"\n{results['machine']}\n")
    for name, r in results["models"].items():
        print(f"### {name} (runtime {r['runtime']})")
        rows = [
            [
                x["concurrency"],
                f"{x['predictions_per_s']:.1f}",
                f"{x['p50_ms']:.1f}",
                f"{x['p95_ms']:.1f}",
                f"{x['p99_ms']:.1f}",
                f"{x['mean_batch']:.2f}",
                f"{x['raw_forward_per_s']:.1f}",
                f"{x['ratio_vs_forward']:.2f}",
                f"{x['ratio_vs_pipeline']:.2f}",
                x["errors"],
            ]
            for x in r["loads"]
        ]
        print(
            markdown_table(
                [
                    "concurrency",
                    "pred/s",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "mean batch",
                    "raw forward/s",
                    "÷ forward",
                    "÷ pipeline",
                    "errors",
                ],
                rows,
            )
        )
        if r["overhead_p50_ms"] is not None:
            print(
                f"\nper-request overhead at concurrency 1 (p50 - raw forward p50): "
                f"{r['overhead_p50_ms']:.2f} ms"
            )
        on = next(x for x in r["loads"] if x["concurrency"] == top)
        off = r["batching_off"]
        print(
            f"batching on vs off at concurrency {top}: {on['predictions_per_s']:.1f} vs "
            f"{off['predictions_per_s']:.1f} pred/s, p99 {on['p99_ms']:.1f} vs "
            f"{off['p99_ms']:.1f} ms\n"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "serve.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
