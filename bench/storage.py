"""Storage benchmark: Hone with its store on S3 ÷ Hone with its store on local disk.

(1) The service. Real `hone api` and `hone worker` processes on PostgreSQL + Redis (the
tests' servers, tests/support/services.py; both must be running), with the default local
store (file://, one data directory for both) or with an S3 store (moto's server on loopback),
where the API and the worker are two hosts, each with its own empty data and cache
directories, sharing only the database, the broker and the bucket. Every round starts
from a fresh database, broker and store and times, on the same upload (scikit-learn's digits,
100 PNGs) and the same job (EfficientNet-Lite0, linear probe):
  upload → ready model   POST /v1/datasets, dataset ready, POST /v1/jobs, job succeeded
  cold first predict     a fresh API process with an empty cache: its first POST predict
                         (on S3 that downloads the version, then loads it); the median of
                         --cold-starts such processes one after another
Rounds alternate S3 / local (S L L S S L ...) after one unrecorded warm-up round, so a drift
of the machine cancels out; the figures are medians.

(2) Artifact download. Storage.version_dir (StoreCache.directory with a cold cache) of a
published version ÷ a plain s3fs copy of the same objects (`fs.get(prefix, local,
recursive=True)`), in MB/s, alternating, medians after one unrecorded warm-up each: for the
version a round trained, and for a synthetic version of three 16-48 MB files and small ones.

    python -m bench.storage                       # ~8 min on 2 CPU cores
    python -m bench.storage --rounds 2 --downloads 3
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import load_average, machine_description, markdown_table
from bench.service import ROOT, Service

MB = 1e6
JOB = {"backbone": "efficientnet_lite0", "method": "linear_probe", "model_name": "bench"}
# (measure, key of a round's timings); the two with a goal first.
SERVICE_MEASURES = (
    ("upload → ready model", "to_model_s"),
    ("cold API: first predict", "first_predict_s"),
    ("  upload → dataset ready", "dataset_s"),
    ("  POST job → job succeeded", "job_s"),
)


def _poll(fetch: Callable[[], dict[str, Any]], field: str, waiting: tuple[str, ...]) -> float:
    """Poll every 0.1 s until `fetch()[field]` leaves `waiting`; the time it did (perf_counter)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        body = fetch()
        if body[field] not in waiting:
            if body[field] not in ("ready", "succeeded"):
                raise RuntimeError(f"ended {body[field]}: {body}")
            return time.perf_counter()
        time.sleep(0.1)
    raise TimeoutError(f"still {waiting} after 600 s")


def _digits_png() -> str:
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = load_digits().images[0] * 255 / 16
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype("uint8"), mode="L").resize((32, 32)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _wait_ready(log: Path) -> None:
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start; see {log}")
        time.sleep(0.2)


def _hosts(kind: str, folder: Path, env: dict[str, str]) -> tuple[Service, Service, Path]:
    """(API, worker, the API host's cache directory) for a local or an S3 round."""
    from tests.support.api_process import free_port

    port = free_port()
    if kind == "local":  # one host: the default store and cache, both under its data dir
        api = Service(folder / "data", port, **env)
        worker = Service(folder / "data", port, **env)
        cache = folder / "data" / "cache"
    else:
        cache = folder / "api" / "cache"
        api = Service(folder / "api" / "data", port, HONE_CACHE_DIR=str(cache), **env)
        worker_cache = str(folder / "worker" / "cache")
        worker = Service(folder / "worker" / "data", port, HONE_CACHE_DIR=worker_cache, **env)
    # The worker says " ready." (Celery's banner) at INFO only, in a log of its own.
    worker.env["HONE_LOG_LEVEL"] = "INFO"
    worker.log.close()
    worker.log = open(folder / "worker.log", "ab")  # noqa: SIM115
    return api, worker, cache


def service_round(
    kind: str,
    folder: Path,
    upload: Path,
    image: str,
    storage_env: dict[str, str],
    cold_starts: int = 2,
) -> dict[str, float]:
    """One round on a fresh database, broker and store: the timings of SERVICE_MEASURES."""
    from ml.backbones.testing import write_test_catalog
    from tests.support.services import fresh_postgres_database, fresh_redis_db

    folder.mkdir(parents=True)
    catalog = write_test_catalog(folder / "test-backbones.json")  # for --backbone tiny_image
    with fresh_postgres_database() as database, fresh_redis_db() as broker:
        env = {
            "HONE_DATABASE_URL": database,
            "HONE_BROKER_URL": broker,
            "HONE_BACKBONES_FILES": json.dumps([str(catalog)]),
            **storage_env,
        }
        api, worker, api_cache = _hosts(kind, folder, env)
        try:
            api.migrate()
            worker_proc = worker.run("worker")
            api.start_api()
            _wait_ready(folder / "worker.log")
            timings = _train(api, upload)
            worker.stop(worker_proc)  # nothing else on the CPU while the cold API loads
            firsts = [_cold_first_predict(api, api_cache, image) for _ in range(cold_starts)]
            timings["first_predict_s"] = statistics.median(firsts)
        finally:
            api.close()
            worker.close()
    return timings


def _cold_first_predict(api: Service, cache: Path, image: str) -> float:
    """Seconds of the first POST predict of a new API process whose cache is empty."""
    api.stop(api.api)
    shutil.rmtree(cache, ignore_errors=True)
    api.start_api()
    body = {"inputs": [{"image_base64": image}], "top_k": 3}
    started = time.perf_counter()
    resp = httpx.post(
        f"{api.url}/v1/models/{JOB['model_name']}/predict",
        headers=api.headers,
        json=body,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    resp.raise_for_status()
    return elapsed


def _train(api: Service, upload: Path) -> dict[str, float]:
    h, url = api.headers, api.url
    started = time.perf_counter()
    with upload.open("rb") as f:
        resp = httpx.post(
            f"{url}/v1/datasets",
            headers=h,
            timeout=300,
            files={"file": (upload.name, f)},
            data={"task": "image_classification"},
        )
    resp.raise_for_status()
    dataset_id = resp.json()["id"]
    ready = _poll(
        lambda: httpx.get(f"{url}/v1/datasets/{dataset_id}", headers=h).json(),
        "status",
        ("processing",),
    )
    resp = httpx.post(f"{url}/v1/jobs", headers=h, json={"dataset_id": dataset_id, **JOB})
    resp.raise_for_status()
    job_id = resp.json()["id"]
    done = _poll(
        lambda: httpx.get(f"{url}/v1/jobs/{job_id}", headers=h).json(),
        "status",
        ("queued", "running", "cancelling"),
    )
    return {"dataset_s": ready - started, "job_s": done - ready, "to_model_s": done - started}


def round_order(rounds: int) -> list[str]:
    """S L L S S L ...: every kind as often as the other, each pair in turn reversed."""
    pairs = [("s3", "local") if i % 2 == 0 else ("local", "s3") for i in range(rounds)]
    return [kind for pair in pairs for kind in pair]


def service_rows(runs: dict[str, list[dict[str, float]]]) -> list[list[str]]:
    """A table row per measure: local and S3 medians and S3 ÷ local."""
    rows = []
    for label, key in SERVICE_MEASURES:
        local = statistics.median(r[key] for r in runs["local"])
        s3 = statistics.median(r[key] for r in runs["s3"])
        goal = "≤ 1.2" if not label.startswith(" ") else ""
        rows.append([label, f"{local:.2f}", f"{s3:.2f}", f"**{s3 / local:.2f}**", goal])
    return rows


# ---- (2) downloads ------------------------------------------------------------------------


def write_synthetic(folder: Path) -> Path:
    """Three large files (16, 32, 48 MB) and 20 small ones, like a version with ONNX exports."""
    folder.mkdir(parents=True)
    for name, size in (("model.safetensors", 48), ("model.onnx", 32), ("model.int8.onnx", 16)):
        (folder / name).write_bytes(os.urandom(int(size * MB)))
    (folder / "tokenizer").mkdir()
    for i in range(20):
        (folder / "tokenizer" / f"part-{i:02d}.json").write_bytes(os.urandom(1024 * (1 + i % 8)))
    (folder / "config.json").write_text(json.dumps({"labels": list("0123456789")}))
    return folder


def download_rates(
    s3_url: str, endpoint_url: str, key: str, repetitions: int, folder: Path
) -> dict[str, Any]:
    """MB/s of Storage.version_dir (cold cache) and of a plain s3fs get of the same objects."""
    import s3fs

    from app.storage.places import Storage
    from app.storage.store import Store

    store = Store(s3_url, endpoint_url=endpoint_url)
    uri = store.uri(key)
    files = store.published(key)
    assert files is not None, key
    size = sum(files.values())
    fs = s3fs.S3FileSystem(endpoint_url=endpoint_url, skip_instance_cache=True)

    def through_storage(target: Path) -> Path:
        return Storage(store, target).version_dir(uri)

    def plain(target: Path) -> Path:
        fs.get(f"{store.root}/{key}", str(target), recursive=True)
        return target

    ways = {"storage": through_storage, "s3fs": plain}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for i in range(repetitions + 1):  # the first is a warm-up: connections, page cache
        for name in list(ways) if i % 2 == 0 else list(ways)[::-1]:
            target = folder / f"{name}-{i}"
            started = time.perf_counter()
            got = ways[name](target)
            elapsed = time.perf_counter() - started
            for rel, length in files.items():
                assert (got / rel).stat().st_size == length, (name, rel)
            shutil.rmtree(target)
            if i:
                seconds[name].append(elapsed)
    rates = {name: [size / MB / s for s in times] for name, times in seconds.items()}
    return {"files": len(files), "mb": size / MB, "seconds": seconds, "mb_s": rates}


def download_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, r in results.items():
        storage = statistics.median(r["mb_s"]["storage"])
        plain = statistics.median(r["mb_s"]["s3fs"])
        rows.append(
            [
                name,
                str(r["files"]),
                f"{r['mb']:.1f}",
                f"{storage:.0f}",
                f"{plain:.0f}",
                f"**{storage / plain:.2f}**",
                "≥ 0.9",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="service rounds of each kind")
    parser.add_argument("--cold-starts", type=int, default=2, help="cold APIs per round")
    parser.add_argument("--downloads", type=int, default=5, help="downloads of each way")
    parser.add_argument("--backbone", default=JOB["backbone"], help="e.g. tiny_image")
    args = parser.parse_args()
    JOB["backbone"] = args.backbone

    from bench.common import quiet_libraries
    from tests.factories.uploads import digits_zip
    from tests.support.s3_server import CREDENTIALS, running_s3_server

    quiet_libraries()
    os.environ.update(CREDENTIALS)  # for this process's own Store and s3fs
    with tempfile.TemporaryDirectory(prefix="hone-storage-") as tmp_name:
        tmp = Path(tmp_name)
        upload = tmp / "digits.zip"
        digits_zip(upload, per_class=10)
        image = _digits_png()
        with running_s3_server(tmp / "s3.log") as s3:
            bucket = s3.create_bucket("hone-bench")
            runs: dict[str, list[dict[str, float]]] = {"local": [], "s3": []}
            last_s3 = ""
            for n, kind in enumerate(["local", *round_order(args.rounds)]):
                storage_env = {}
                if kind == "s3":
                    last_s3 = f"{bucket}/round-{n}"
                    storage_env = {**s3.env(), "HONE_STORAGE_URL": last_s3}
                timings = service_round(
                    kind, tmp / f"round-{n}", upload, image, storage_env, args.cold_starts
                )
                shown = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
                print(f"round {n} {kind:5}: {shown}", flush=True)
                if n:  # round 0 warms the machine up
                    runs[kind].append(timings)
                shutil.rmtree(tmp / f"round-{n}", ignore_errors=True)

            from app.storage.places import Storage
            from app.storage.store import Store

            store = Store(last_s3, endpoint_url=s3.endpoint_url)
            trained = next(k for k in store.list("models") if k.endswith("/.published"))
            storage = Storage(store, tmp / "publisher")
            synthetic_uri = storage.version_uri("bench", "synthetic", 1)
            storage.publish_version(write_synthetic(tmp / "synthetic"), synthetic_uri)
            artifacts = {
                f"trained version ({JOB['backbone']})": (last_s3, trained.rsplit("/", 1)[0]),
                "synthetic version": (last_s3, store.key_of(synthetic_uri)),
            }
            downloads = {
                name: download_rates(url, s3.endpoint_url, key, args.downloads, tmp / "dl")
                for name, (url, key) in artifacts.items()
            }
    report(runs, downloads, args)


def report(
    runs: dict[str, list[dict[str, float]]],
    downloads: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    print(f"\n{machine_description()}; {load_average()}")
    print(
        f"\n(1) {JOB['backbone']}, {JOB['method']}, 100 digits PNGs; PostgreSQL + Redis; "
        f"medians of {args.rounds} rounds each ({args.cold_starts} cold APIs a round), seconds\n"
    )
    headers = ["measure", "local s", "S3 s", "S3 ÷ local", "goal"]
    print(markdown_table(headers, service_rows(runs)))
    print(f"\n(2) cold-cache download, medians of {args.downloads}, MB/s\n")
    headers = ["artifact", "files", "MB", "Storage MB/s", "s3fs get MB/s", "ratio", "goal"]
    print(markdown_table(headers, download_rows(downloads)))
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "storage.json").write_text(
        json.dumps({"job": JOB, "service": runs, "downloads": downloads}, indent=2)
    )


if __name__ == "__main__":
    main()
