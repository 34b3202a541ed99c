"""A small real HTTP server for the SDK's transport tests: it answers from a script (status,
headers, body) and records every request it got, body included (chunked bodies decoded), so
a test can count retries, time them and read the headers each attempt carried."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as it is instead of `body` as JSON
    content_type: str | None = None


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived


class ScriptedServer:
    """Answers the i-th request with script[i] (the last one once the script runs out)."""

    def __init__(self, script: list[Reply]) -> None:
        self.script = script
        self.received: list[Received] = []
        handler = _handler(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reply_for(self, index: int) -> Reply:
        return self.script[min(index, len(self.script) - 1)]


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self._body()
            index = len(server.received)
            server.received.append(
                Received(self.command, self.path, dict(self.headers), body, time.monotonic())
            )
            reply = server.reply_for(index)
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            if reply.raw is not None:
                payload = reply.raw
            self.send_response(reply.status)
            content_type = reply.content_type or "application/json"
            if reply.status >= 400:
                content_type = "application/problem+json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _any

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def scripted(*script: Reply) -> Iterator[ScriptedServer]:
    server = ScriptedServer(list(script))
    server._thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def problem(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    title = {429: "Too many requests", 503: "Service unavailable"}.get(status, "Error")
    body = {"type": f"https://hone.dev/problems/{code}", "title": title, "status": status}
    return body | {"detail": detail, "code": code, **extra}


JOB: dict[str, Any] = {
    "id": "job_1",
    "object": "fine_tuning.job",
    "status": "queued",
    "dataset_id": "ds_1",
    "validation_dataset_id": None,
    "backbone": "tiny_image",
    "model_name": "m",
    "method": "auto",
    "method_chosen": None,
    "method_reason": None,
    "hyperparameters": {},
    "seed": 0,
    "created_at": "2026-01-01T00:00:00Z",
    "started_at": None,
    "finished_at": None,
    "progress": {},
    "metrics": {},
    "model_version": None,
    "error": None,
}
DATASET: dict[str, Any] = {
    "id": "ds_1",
    "object": "dataset",
    "name": "photos",
    "task": "image_classification",
    "multilabel": False,
    "status": "ready",
    "created_at": "2026-01-01T00:00:00Z",
    "finished_at": None,
    "num_examples": 2,
    "labels": ["a", "b"],
    "label_counts": {"a": 1, "b": 1},
    "targets": None,
    "sha256": None,
    "report": None,
    "error": None,
}


def digits_folder(folder: Path, per_class: int, classes: int = 10) -> dict[str, int]:
    """sklearn's digits as 32 px PNGs in a folder per label (`3/0007.png`), as a person's
    photos would be laid out; returns {label: count}."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: dict[str, int] = {}
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = str(int(target))
        if int(target) >= classes or counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8), mode="L")
        (folder / label).mkdir(parents=True, exist_ok=True)
        image.resize((32, 32), Image.Resampling.NEAREST).save(folder / label / f"{index:04d}.png")
    return counts
