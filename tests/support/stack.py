"""A running Hone stack for integration tests: a migrated database, a broker, a real Celery
worker process, and the API app (in process, through HTTPX's ASGI transport)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass
class Backend:
    name: str
    data_dir: Path
    database_url: str | None = None
    broker_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {
            "HONE_DATA_DIR": str(self.data_dir),
            "HONE_LOG_JSON": "true",
            "HONE_LEASE_SECONDS": "4",
            # Small caps so the hostile-archive tests stay small and fast.
            "HONE_MAX_UNCOMPRESSED_BYTES": str(16 * 1024 * 1024),
            **self.extra_env,
        }
        if self.database_url:
            env["HONE_DATABASE_URL"] = self.database_url
        if self.broker_url:
            env["HONE_BROKER_URL"] = self.broker_url
        return env

    def settings(self, **overrides: Any) -> Settings:
        # List settings travel as JSON in the environment; the constructor wants them decoded.
        values = {
            k.removeprefix("HONE_").lower(): json.loads(v) if v.startswith("[") else v
            for k, v in self.env().items()
        }
        values.update(overrides)
        return Settings(**values)


class HoneProcess:
    """A `hone ...` subprocess in its own session, its output appended to a log file."""

    what = "process"

    def __init__(self, backend: Backend, log_path: Path) -> None:
        self.backend, self.log_path = backend, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, args: list[str], env: dict[str, str]) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env={**os.environ, **self.backend.env(), "PYTHONUNBUFFERED": "1", **env},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.what} exited early:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the process group (parent and children): a machine-loss simulation."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._close_log()

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()


class WorkerProcess(HoneProcess):
    """`hone worker` as a real subprocess; its log goes to a file the tests can read."""

    what = "worker"

    def __init__(self, backend: Backend, log_path: Path, queues: str = "train,data") -> None:
        super().__init__(backend, log_path)
        self.queues = queues

    def start(self, timeout: float = 60) -> WorkerProcess:
        self._spawn(["worker", "--queues", self.queues], {})
        wait_until(self._ready, timeout=timeout, what=f"worker ready (log: {self.log_path})")
        return self

    def _ready(self) -> bool:
        self._check_alive()
        return " ready." in self.log()

    def children(self) -> list[int]:
        assert self.proc is not None
        out = subprocess.run(
            ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True, check=False
        )
        return [int(p) for p in out.stdout.split()]
