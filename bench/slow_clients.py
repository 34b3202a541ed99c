"""Many stalled uploads must not starve everyone else: `/healthz` and prediction latency with
50 uploads that stop sending mid-body, ÷ the same latencies measured just before, same run.

Against real `hone api` and `hone worker` processes (embedded backend): a MiniLM-L6 text model
is trained once (linear probe on real tweets), then
1. baseline: `--requests` sequential `/healthz` calls and as many single-text predictions;
2. `--stalled` raw connections each send the headers and the first KiB of a multipart upload
   (a Content-Length promising 50 MB), then nothing; the same calls are measured again while
   they hang;
3. each stalled connection is watched until the server closes it (the body read timeout,
   `HONE_BODY_READ_TIMEOUT_SECONDS`, set to `--body-timeout` here), and the staging folders
   under `uploads/` are counted afterwards.

    python -m bench.slow_clients [--stalled 50] [--requests 200] [--body-timeout 5]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import load_average, machine_description, tweet_corpus, write_text_csv
from bench.service import Service, train

BOUNDARY = "bench-stalled"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _latencies(client: httpx.Client, service: Service, model: str, n: int) -> dict[str, float]:
    health, predict = [], []
    body = {"inputs": ["the parcel never came and nobody answers the phone"]}
    for _ in range(n):
        start = time.perf_counter()
        client.get("/healthz").raise_for_status()
        health.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.post(f"/v1/models/{model}/predict", json=body).raise_for_status()
        predict.append(time.perf_counter() - start)

    def p(values: list[float], q: float) -> float:
        return sorted(values)[int(q * (len(values) - 1))] * 1000

    return {
        "healthz_p50": p(health, 0.5),
        "healthz_p95": p(health, 0.95),
        "predict_p50": p(predict, 0.5),
        "predict_p95": p(predict, 0.95),
    }


def _stall(service: Service) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
    preamble = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"'
        "\r\n\r\ntext,label\n"
    ).encode() + b"x" * 1024
    head = (
        "POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {service.key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {50 * 1024 * 1024}\r\n\r\n"
    ).encode()
    sock.sendall(head + preamble)
    return sock


def _closed_within(socks: list[socket.socket], timeout: float) -> tuple[int, float]:
    """How many of `socks` the server closed (or answered) within `timeout` s, and when the
    last of them was."""
    start = time.monotonic()
    open_socks = set(socks)
    last = 0.0
    for sock in socks:
        sock.settimeout(0.05)
    while open_socks and time.monotonic() - start < timeout:
        for sock in list(open_socks):
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if not data or data.startswith(b"HTTP/1.1"):
                open_socks.discard(sock)
                last = time.monotonic() - start
    return len(socks) - len(open_socks), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--body-timeout", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hone-bench-slow-") as tmp:
        data = Path(tmp) / "data"
        service = Service(data, _free_port(), HONE_BODY_READ_TIMEOUT_SECONDS=str(args.body_timeout))
        try:
            service.migrate()
            service.run("worker")
            service.start_api()
            corpus = tweet_corpus()
            rows = corpus[:: max(1, len(corpus) // 300)][:300]  # every label, spread out
            upload = write_text_csv(Path(tmp) / "tweets.csv", rows)
            train(service, upload, "text_classification", "minilm_l6", "tweets")
            with httpx.Client(base_url=service.url, headers=service.headers, timeout=60) as c:
                _latencies(c, service, "tweets", 20)  # warm: model loaded, caches filled
                base = _latencies(c, service, "tweets", args.requests)
                socks = [_stall(service) for _ in range(args.stalled)]
                stalled_at = time.monotonic()
                loaded = _latencies(c, service, "tweets", args.requests)
                closed, last = _closed_within(socks, args.body_timeout * 3 + 10)
                waited = time.monotonic() - stalled_at
            for sock in socks:
                sock.close()
            staging = [p for p in (data / "uploads").iterdir() if p.name.startswith(".incoming")]
        finally:
            service.close()
    print(f"machine: {machine_description()}; {load_average()}")
    print(f"{args.stalled} stalled uploads, {args.requests} sequential calls of each kind")
    print("| measure | baseline ms | with stalled uploads ms | ratio |")
    print("|---|---|---|---|")
    for key in base:
        ratio = loaded[key] / base[key]
        print(f"| {key} | {base[key]:.2f} | {loaded[key]:.2f} | {ratio:.2f} |")
    print(
        f"stalled connections closed by the server: {closed}/{args.stalled}, the last "
        f"{last:.1f} s after the latency round ended ({waited:.1f} s after they stalled; "
        f"body read timeout {args.body_timeout} s); staging folders left: {len(staging)}"
    )
    print(f"median ratio: {statistics.median(loaded[k] / base[k] for k in base):.2f}")


if __name__ == "__main__":
    main()
