"""One training process per GPU: discovery, the worker's pool size, and each pool process's GPU.

The pinning test runs a real `hone worker` told it has three GPUs (HONE_TRAIN_DEVICES), and
reads what an operator reads: the line each pool process logs when it is given its GPU."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from app.cli import _worker_concurrency
from app.config import Settings
from app.queue import TaskQueue
from tests.conftest import fresh_backend
from tests.support.stack import ROOT, WorkerProcess, wait_until
from workers import devices

NVIDIA_SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2c4e8d57-6f7a-4b0e-9d2e-0123456789ab)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-8b1f0a44-1c2d-4e3f-8a9b-0123456789ab)
  MIG 3g.20gb     Device  0: (UUID: MIG-5f1e2d3c-4b5a-5968-8776-0123456789ab)
  MIG 3g.20gb     Device  1: (UUID: MIG-6a7b8c9d-0e1f-5a2b-9c3d-0123456789ab)
GPU 2: NVIDIA H100 80GB HBM3 (UUID: GPU-9d8c7b6a-5f4e-4d3c-8b2a-0123456789ab)
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0,1,2", ["0", "1", "2"]),
        (" 2 , 3", ["2", "3"]),
        ("", []),
        ("-1", []),
        ("0,-1,2", ["0"]),  # CUDA stops at the first entry that names no device
        ("GPU-2c4e8d57-6f7a,1", ["GPU-2c4e8d57-6f7a", "1"]),
        ("1,1", ["1"]),
    ],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(value: str, expected: list[str]) -> None:
    assert devices.parse_visible(value) == expected


def test_nvidia_smi_lists_gpus_and_the_mig_instances_of_a_partitioned_one() -> None:
    assert devices.parse_nvidia_smi(NVIDIA_SMI) == [
        "0",
        "MIG-5f1e2d3c-4b5a-5968-8776-0123456789ab",
        "MIG-6a7b8c9d-0e1f-5a2b-9c3d-0123456789ab",
        "2",
    ]
    assert devices.parse_nvidia_smi("") == []


def test_discovery_prefers_the_setting_then_cuda_visible_devices_then_the_driver() -> None:
    def driver_must_not_be_asked() -> str:
        raise AssertionError("nvidia-smi was run")

    assert devices.discover("3,1", "0,1,2", driver_must_not_be_asked) == ["3", "1"]
    assert devices.discover(None, "4,5", driver_must_not_be_asked) == ["4", "5"]
    assert devices.discover(None, "", driver_must_not_be_asked) == []  # GPUs hidden: CPU
    assert devices.discover(None, None, lambda: NVIDIA_SMI)[0] == "0"
    assert devices.discover(None, None, lambda: "") == []


def test_a_host_without_nvidia_smi_has_no_gpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.nvidia_smi_listing() == ""


def test_discovery_never_initialises_cuda_in_the_worker_process() -> None:
    probe = (
        "import torch; from workers.devices import host_devices; host_devices(); "
        "print(torch.cuda.is_initialized())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" 0, 1 ", "0,1"), ("", None), ("GPU-2c4e8d57,MIG-5f1e", "GPU-2c4e8d57,MIG-5f1e")],
)
def test_train_devices_setting_is_normalised(value: str, expected: str | None) -> None:
    assert Settings(train_devices=value).train_devices == expected


@pytest.mark.parametrize(("value", "problem"), [("0,0", "named twice"), ("gpu0", "0,1,2")])
def test_a_bad_train_devices_setting_is_refused(value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(train_devices=value)


def _args(queues: str = "train,data", concurrency: int | None = None) -> argparse.Namespace:
    return argparse.Namespace(queues=queues, concurrency=concurrency)


GPUS = ["0", "1", "2"]


def test_a_training_worker_runs_one_process_per_gpu() -> None:
    settings = Settings()
    assert _worker_concurrency(_args(), settings, GPUS) == 3
    assert _worker_concurrency(_args(concurrency=2), settings, GPUS) == 2
    assert _worker_concurrency(_args("train"), Settings(worker_concurrency=1), GPUS) == 1
    # A CPU-only host and a data-only worker keep the configured size.
    assert _worker_concurrency(_args(), settings, []) == 1
    assert _worker_concurrency(_args(concurrency=4), settings, []) == 4
    assert _worker_concurrency(_args("data", concurrency=8), settings, GPUS) == 8
    assert _worker_concurrency(_args("data"), Settings(worker_concurrency=5), GPUS) == 5


def test_more_training_processes_than_gpus_is_refused() -> None:
    problem = _worker_concurrency(_args(concurrency=4), Settings(), GPUS)
    assert isinstance(problem, str) and problem.startswith("--concurrency 4 does not fit the 3")
    problem = _worker_concurrency(_args("train"), Settings(worker_concurrency=5), GPUS)
    assert isinstance(problem, str) and problem.startswith("HONE_WORKER_CONCURRENCY=5 ")


def test_hone_worker_refuses_too_many_processes_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env.update({"HONE_DATA_DIR": str(tmp_path / "data"), "HONE_TRAIN_DEVICES": "0,1,2"})
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--concurrency", "4"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hone: --concurrency 4 does not fit the 3 GPU(s)") and "(0,1,2)" in line


def test_a_pool_process_sees_only_the_gpu_of_its_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_host", ["0", "1", "2"])
    monkeypatch.setattr(devices, "_pinned", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    for index, seen, pinned in [(1, "1", "1"), (3, "", None)]:
        monkeypatch.setattr(devices, "current_process", lambda i=index: SimpleNamespace(index=i))
        devices._pin_this_process()
        assert (os.environ["CUDA_VISIBLE_DEVICES"], devices.pinned_device()) == (seen, pinned)


def test_a_cpu_only_host_pins_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "_host", [])
    monkeypatch.setattr(devices, "_pinned", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "current_process", lambda: SimpleNamespace(index=0))
    devices._pin_this_process()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and devices.pinned_device() is None


def _pins(worker: WorkerProcess) -> dict[int, str]:
    """pid -> GPU of each live pool process, from the line each logs when it is pinned."""
    pinned: dict[int, str] = {}
    for line in worker.log().splitlines():
        entry: dict[str, Any] = json.loads(line) if line.startswith("{") else {}
        if entry.get("logger") == "workers.devices" and "pool_index" in entry:
            pinned[entry["pid"]] = entry["device"]
    live = worker.children()
    return {pid: pinned[pid] for pid in live if pid in pinned} if len(live) == 3 else {}


def _replaced(worker: WorkerProcess, before: dict[int, str]) -> dict[int, str]:
    """The live pins once a pool process of `before` has been replaced, else {}."""
    pins = _pins(worker)
    return pins if len(pins) == 3 and pins.keys() != before.keys() else {}


def test_each_pool_process_has_its_own_gpu_and_a_replacement_gets_the_freed_one(
    tmp_path: Path,
) -> None:
    with fresh_backend("embedded", tmp_path / "hone") as backend:
        backend.extra_env["HONE_TRAIN_DEVICES"] = "0,1,2"
        worker = WorkerProcess(backend, tmp_path / "worker.log").start()
        queue = TaskQueue(backend.settings())
        try:
            before = wait_until(lambda: len(_pins(worker)) == 3 and _pins(worker), timeout=30,
                                what="three pinned pool processes")  # fmt: skip
            assert sorted(before.values()) == GPUS
            for _ in range(2):
                # Nothing to process: the task is a no-op, and its process is then replaced.
                queue.process_dataset("ds_no_such_dataset")
                after = wait_until(partial(_replaced, worker, before), timeout=30,
                                   what="a replacement pool process")  # fmt: skip
                (gone,) = before.keys() - after.keys()
                (new,) = after.keys() - before.keys()
                assert after[new] == before[gone]  # the freed GPU, never one in use
                assert sorted(after.values()) == GPUS
                before = after
        finally:
            queue.close()
            # SIGKILL: a warm shutdown that SIGTERMs idle pool processes can leave a pool of
            # several hanging at exit (workers/celery_app.py), and this test is not about it.
            worker.kill()
