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
from bench.http_client import Connection, post_json
from bench.service import ROOT, Service, train
from ml.inference.predictor import Predictor, load_predictor
from ml.tasks import PredictOptions


def _histogram(metrics: str, name: str, model: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram. Its totals cover every model (no label names a
    model: /metrics tells nothing across projects); a benchmark round loads one model only."""
    del model
    values = {}
    for kind in ("sum", "count"):
        pattern = rf"^{name}_{kind} (\S+)$"
        match = re.search(pattern, metrics, re.MULTILINE)
        values[kind] = float(match.group(1)) if match else 0.0
    return values["sum"], values["count"]


def _server_timing(header: str) -> dict[str, float]:
    """{"queue": ms, "inference": ms, "handler": ms} from a Server-Timing header."""
    parts = (part.strip().split(";dur=") for part in header.split(","))
    return {name: float(value) for name, value in parts}


async def closed_loop(
    service: Service, name: str, bodies: Sequence[dict[str, Any]], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Every client sends its next request when the previous one answers, each on its own
    keep-alive connection (bench/http_client.py, so the client's cost stays small)."""
    path = f"/v1/models/{name}/predict"
    requests = [post_json(path, json.dumps(b).encode(), service.headers) for b in bodies]
    latencies: list[float] = []
    timings: list[dict[str, float]] = []
    errors = 0
    label = f"{name}:1"
    metrics_url = f"{service.url}/metrics"
    before = _histogram(httpx.get(metrics_url).text, "hone_predict_batch_size", label)
    connections = [await Connection.open(service.url) for _ in range(concurrency)]
    stop = time.perf_counter() + seconds

    async def client_loop(offset: int) -> None:
        nonlocal errors
        i = offset
        connection = connections[offset]
        while time.perf_counter() < stop:
            start = time.perf_counter()
            reply = await connection.send(requests[i % len(requests)])
            if reply.status == 200:
                latencies.append(time.perf_counter() - start)
                timing = _server_timing(reply.headers["server-timing"])
                timings.append(timing | {"batch": float(reply.headers["x-batch-size"])})
            else:
                errors += 1
            i += concurrency

    began = time.perf_counter()
    await asyncio.gather(*(client_loop(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - began
    for connection in connections:
        await connection.close()
    after = _histogram(httpx.get(metrics_url).text, "hone_predict_batch_size", label)
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
        # Medians of the server's own view (Server-Timing), for the overhead breakdown.
        "server_ms": {key: statistics.median(t[key] for t in timings) for key in timings[0]}
        if timings
        else {},
        "http_ms": statistics.median(
            lat * 1000 - t["handler"] for lat, t in zip(latencies, timings, strict=True)
        )
        if timings
        else None,
        # Paired with the forward pass that carried each request, in the same instant: immune
        # to the machine's slow phases, which slow both sides alike.
        "paired_overhead_ms": statistics.median(
            lat * 1000 - t["forward"] for lat, t in zip(latencies, timings, strict=True)
        )
        if timings
        else None,
        "in_server_forward_per_s": statistics.median(
            t["batch"] / t["forward"] * 1000 for t in timings if t["forward"] > 0
        )
        if timings
        else None,
    }


def paired_rounds(
    service: Service,
    name: str,
    bodies: Sequence[dict[str, Any]],
    predictor: Predictor,
    inputs: Sequence[Any],
    concurrency: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """`args.rounds` rounds of (server load, then the raw forward at the batch size it formed);
    each round's ratio compares two measurements seconds apart, so a slow phase of the shared
    machine (they last tens of seconds here) slows both sides of it. The round with the
    median ratio is reported, with every round's ratio beside it."""
    rounds = []
    for _ in range(args.rounds):
        load = asyncio.run(closed_loop(service, name, bodies, concurrency, args.seconds))
        batch = max(1, round(load["mean_batch"]))
        raw = raw_throughput(predictor, inputs, batch, args.seconds / 2)
        load |= {
            "raw_forward_per_s": raw["forward_per_s"],
            "ratio_vs_forward": load["predictions_per_s"] / raw["forward_per_s"],
            "ratio_vs_pipeline": load["predictions_per_s"] / raw["pipeline_per_s"],
            "ratio_vs_in_server_forward": load["predictions_per_s"]
            / load["in_server_forward_per_s"],
        }
        if concurrency == 1:
            load["overhead"] = overhead(load, raw["forward_p50_ms"])
        rounds.append(load)
    ranked = sorted(rounds, key=lambda run: run["ratio_vs_forward"])
    return ranked[len(ranked) // 2] | {"rounds": [round(r["ratio_vs_forward"], 3) for r in rounds]}


def raw_throughput(
    predictor: Predictor, inputs: Sequence[Any], batch: int, seconds: float
) -> dict[str, Any]:
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
        values = predictor.postprocess(predictor.forward(predictor.preprocess(chunk)))
        predictor.format(values, PredictOptions())
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
        "--rounds",
        type=int,
        default=3,
        help="runs per load level; the run with the median throughput is reported (a shared "
        "machine has slow phases that one run can land in)",
    )
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
                predictor = load_predictor(artifact)
                inputs = [raw_inputs(b) for b in bodies]
                loads = [
                    paired_rounds(service, name, bodies, predictor, inputs, c, args) for c in levels
                ]
                one = next((x for x in loads if x["concurrency"] == 1), None)
                results["models"][name] = {
                    "runtime": runtime,
                    "loads": loads,
                    "overhead": one["overhead"] if one else None,
                }
            # Batching off: a second API over the same registry, measured in alternation with
            # the first, so each round's on/off pair shares the machine's phase.
            unbatched = Service(data_dir, service.port + 1, HONE_MAX_BATCH_SIZE="1")
            unbatched.start_api()
            top = max(levels)
            try:
                for name, bodies in (("fashion", image_bodies), ("tweets", text_bodies)):
                    pairs = [
                        tuple(
                            asyncio.run(closed_loop(api, name, bodies, top, args.seconds))
                            for api in (service, unbatched)
                        )
                        for _ in range(args.rounds)
                    ]
                    ranked = sorted(
                        pairs, key=lambda p: p[0]["predictions_per_s"] / p[1]["predictions_per_s"]
                    )
                    on, off = ranked[len(ranked) // 2]
                    results["models"][name]["batching"] = {
                        "on": on,
                        "off": off,
                        "rounds": [
                            round(a["predictions_per_s"] / b["predictions_per_s"], 3)
                            for a, b in pairs
                        ],
                    }
            finally:
                unbatched.close()
        finally:
            service.close()
    report(results, top)


def overhead(one: dict[str, Any], forward_ms: float) -> dict[str, float]:
    """Where a lone request's time beyond the raw forward pass goes, from Server-Timing."""
    server = one["server_ms"]
    return {
        "forward_ms": forward_ms,
        "total_ms": one["p50_ms"] - forward_ms,
        "pipeline_ms": server["inference"] - forward_ms,
        "handler_ms": server["handler"] - server["inference"] - server["queue"],
        "http_ms": one["http_ms"],
        "paired_ms": one["paired_overhead_ms"],
    }


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
                " / ".join(f"{r:.2f}" for r in x["rounds"]),
                f"{x['ratio_vs_in_server_forward']:.2f}",
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
                    "÷ forward, each round",
                    "÷ in-server forward",
                    "errors",
                ],
                rows,
            )
        )
        if r["overhead"] is not None:
            o = r["overhead"]
            print(
                f"\nper-request overhead at concurrency 1 (p50 - raw forward p50): "
                f"{o['total_ms']:.2f} ms = preprocessing and formatting {o['pipeline_ms']:.2f} + "
                f"handler {o['handler_ms']:.2f} + HTTP and client {o['http_ms']:.2f} "
                f"(medians of each part; forward p50 {o['forward_ms']:.2f} ms); paired with "
                f"each request's own forward pass: {o['paired_ms']:.2f} ms"
            )
        on, off = r["batching"]["on"], r["batching"]["off"]
        rounds = " / ".join(f"{x:.2f}" for x in r["batching"]["rounds"])
        print(
            f"batching on vs off at concurrency {top} (alternating rounds, median pair): "
            f"{on['predictions_per_s']:.1f} vs {off['predictions_per_s']:.1f} pred/s, "
            f"p99 {on['p99_ms']:.1f} vs {off['p99_ms']:.1f} ms; on/off each round: {rounds}\n"
        )
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "serve.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
