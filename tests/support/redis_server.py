"""A private `redis-server` on its own loopback port, for tests that take the broker away.

It keeps nothing on disk (no RDB, no AOF): stopping it loses every queued message, as a
crashed broker without persistence does, and starting it again on the same port gives an
empty one at the same URL.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

from tests.support.api_process import free_port
from tests.support.services import unavailable
from tests.support.stack import wait_until


class RedisServer:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server", FileNotFoundError("not on PATH"))
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(binary), *args], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, timeout=timeout, what=f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        """SIGKILL: the broker vanishes at once, like a crashed one."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited early:\n{self.log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False
