"""A real Hone service for benchmarks: `hone api` and `hone worker` subprocesses over one
data directory, and the HTTP calls that train a version through it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Service:
    """`hone worker` and `hone api` subprocesses over one data directory."""

    def __init__(self, data_dir: Path, port: int, **env: str) -> None:
        self.key = "hone_" + secrets.token_hex(24)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "HONE_DATA_DIR": str(data_dir),
            "HONE_PORT": str(port),
            "HONE_HOST": "127.0.0.1",
            "HONE_BOOTSTRAP_API_KEY": self.key,
            "HONE_LOG_LEVEL": "WARNING",
            **env,
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(data_dir / "service.log", "ab")  # noqa: SIM115

    def run(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "app.cli", "migrate"],
            env=self.env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start_api(self) -> None:
        self.api = self.run("api")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the API did not start; see service.log")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)
        self.log.close()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def upload_dataset(service: Service, upload: Path, task: str) -> dict[str, Any]:
    """POST the file to /v1/datasets and wait until the dataset is processed."""
    h = service.headers
    with upload.open("rb") as f:
        resp = httpx.post(
            f"{service.url}/v1/datasets",
            headers=h,
            timeout=300,
            files={"file": (upload.name, f)},
            data={"task": task},
        )
    resp.raise_for_status()
    dataset = resp.json()
    while dataset["status"] == "processing":
        time.sleep(0.5)
        dataset = httpx.get(f"{service.url}/v1/datasets/{dataset['id']}", headers=h).json()
    if dataset["status"] != "ready":
        raise RuntimeError(f"dataset {upload.name} was not accepted: {dataset}")
    return dataset


def wait_for_job(service: Service, job_id: str, poll_s: float = 0.5) -> dict[str, Any]:
    """The job once it has finished; RuntimeError unless it succeeded."""
    while True:
        job = httpx.get(f"{service.url}/v1/jobs/{job_id}", headers=service.headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(poll_s)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
    return job


def train(service: Service, upload: Path, task: str, backbone: str, name: str) -> dict[str, Any]:
    """Upload, then train a linear-probe version of `name` and wait for it."""
    h = service.headers
    dataset = upload_dataset(service, upload, task)
    job = httpx.post(
        f"{service.url}/v1/jobs",
        headers=h,
        json={
            "dataset_id": dataset["id"],
            "backbone": backbone,
            "model_name": name,
            "method": "linear_probe",
        },
    ).json()
    return wait_for_job(service, job["id"], poll_s=1.0)
