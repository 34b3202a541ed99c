"""A private S3-compatible server (moto's) on its own loopback port, for tests of the S3 store.

It runs as a subprocess so fault tests can take it away in two ways:
  pause()/resume()  SIGSTOP/SIGCONT: the port still accepts connections but nothing answers,
                    like a hung or partitioned store; every bucket and object is kept.
  kill()/start()    SIGKILL, then a new server on the same port: moto keeps everything in
                    memory, so the restarted server has no buckets at all.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.api_process import free_port
from tests.support.services import unavailable
from tests.support.stack import wait_until

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Credentials come from the variables above; never probe an instance metadata service.
    "AWS_EC2_METADATA_DISABLED": "true",
}


class S3Server:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._s3: Any = None

    def start(self, timeout: float = 30) -> S3Server:
        """Start the server (again, on the same port, after kill()); skip or fail if it can't."""
        args = ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        try:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT
                )
            wait_until(self._answers, timeout=timeout, what=f"moto server on {self.port}")
        except (OSError, RuntimeError, TimeoutError) as exc:
            self.stop()
            unavailable("S3 test server (moto)", exc)
        return self

    def env(self) -> dict[str, str]:
        """What a Hone process needs in its environment to use this server's buckets."""
        return {**CREDENTIALS, "HONE_S3_ENDPOINT_URL": self.endpoint_url}

    def create_bucket(self, name: str | None = None) -> str:
        """A new, empty bucket, as the s3:// URL a store is configured with."""
        name = name or f"hone-test-{secrets.token_hex(6)}"
        self._client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered; state is kept."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the store vanishes at once, with every bucket (moto keeps no state on disk)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()  # a stopped process does not act on SIGTERM until continued
        self.kill()

    def _signal(self, signum: int) -> None:
        assert self.proc is not None and self.proc.poll() is None, "the S3 server is not running"
        os.kill(self.proc.pid, signum)

    def _client(self) -> Any:
        if self._s3 is not None:
            return self._s3
        import botocore.session

        session = botocore.session.get_session()
        self._s3 = session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        return self._s3

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"moto server exited early:\n{self.log_path.read_text()}")
        try:
            return httpx.get(f"{self.endpoint_url}/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass(frozen=True)
class S3Bucket:
    server: S3Server
    url: str  # s3://<bucket>


@contextmanager
def running_s3_server(log_path: Path) -> Iterator[S3Server]:
    """A running server for the length of the block."""
    server = S3Server(log_path).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def s3_bucket(tmp_path: Path, server: S3Server | None = None) -> Iterator[S3Bucket]:
    """A fresh bucket, on `server` or on a server of its own (logging to tmp_path)."""
    if server is not None:
        yield S3Bucket(server, server.create_bucket())
        return
    with running_s3_server(tmp_path / "s3-server.log") as own:
        yield S3Bucket(own, own.create_bucket())
