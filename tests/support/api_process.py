"""`hone api` as a real uvicorn subprocess on a free loopback port."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.support.stack import Backend, HoneProcess, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiProcess(HoneProcess):
    what = "API"

    def __init__(self, backend: Backend, log_path: Path, **env: str) -> None:
        super().__init__(backend, log_path)
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> ApiProcess:
        self._spawn(["api"], {"HONE_HOST": "127.0.0.1", "HONE_PORT": str(self.port), **self.env})
        wait_until(self._healthy, timeout=timeout, what=f"API on {self.url} ({self.log_path})")
        return self

    def _healthy(self) -> bool:
        self._check_alive()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
