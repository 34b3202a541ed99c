"""One training process per GPU: which GPUs a worker uses, and which one each pool process gets.

Discovery runs in the worker's main process and never initialises CUDA there (a CUDA context
does not survive the fork; workers/preload.py): HONE_TRAIN_DEVICES when set, else the
CUDA_VISIBLE_DEVICES the worker was started with, else `nvidia-smi -L`, which asks the driver
(NVML) from a process of its own. torch.cuda.device_count() would use NVML too, but falls back
to initialising CUDA when NVML cannot answer (MIG UUIDs, a missing libnvidia-ml).

Pinning: billiard numbers the prefork pool's processes 0..concurrency-1 and gives a replacement
the lowest number no live process holds (`Pool._avail_index`), so with one task per child a
number, and with it a GPU, is free again only once the process that held it has exited. In
`worker_process_init`, before its first task, the process numbered i sets CUDA_VISIBLE_DEVICES
to the i-th GPU: CUDA, initialised later by the job, sees that GPU only, as cuda:0, so "auto"
and "cuda" in a training spec mean this process's GPU. A process numbered past the GPUs (a
data-only worker with more processes than GPUs) sees none.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable
from typing import Any

from billiard.process import current_process
from celery import signals

from app.config import GPU_ID, Settings, get_settings

log = logging.getLogger(__name__)

NVIDIA_SMI_TIMEOUT_SECONDS = 10
# `nvidia-smi -L`: "GPU 0: NVIDIA H200 (UUID: GPU-…)", then one indented line per MIG instance.
_GPU_LINE = re.compile(r"GPU (\d+): ")
_MIG_LINE = re.compile(r"\s+MIG .*\(UUID: (MIG-[^)\s]+)\)")

# This host's GPUs, found once in the main process; pool processes inherit the list.
_host: list[str] | None = None
_pinned: str | None = None


def parse_visible(value: str) -> list[str]:
    """The GPUs a CUDA_VISIBLE_DEVICES value names, read as CUDA reads it: up to the first
    entry that names no device ("", "-1": none at all)."""
    devices: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        if not GPU_ID.fullmatch(entry) or entry in devices:
            break
        devices.append(entry)
    return devices


def parse_nvidia_smi(listing: str) -> list[str]:
    """The GPUs in `nvidia-smi -L` output: a GPU's index, or the UUIDs of its MIG instances
    when it is partitioned (CUDA then shows the instances, not the GPU)."""
    gpus: list[tuple[str, list[str]]] = []
    for line in listing.splitlines():
        if gpu := _GPU_LINE.match(line):
            gpus.append((gpu.group(1), []))
        elif (mig := _MIG_LINE.match(line)) and gpus:
            gpus[-1][1].append(mig.group(1))
    return [device for index, migs in gpus for device in (migs or [index])]


def nvidia_smi_listing() -> str:
    """`nvidia-smi -L`, or "" where there is no NVIDIA driver (a CPU-only host)."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "-L"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def discover(
    configured: str | None,
    cuda_visible: str | None,
    listing: Callable[[], str] = nvidia_smi_listing,
) -> list[str]:
    """The GPUs to train on: those configured, else those CUDA_VISIBLE_DEVICES leaves visible,
    else those the driver lists."""
    if configured is not None:
        return configured.split(",")
    if cuda_visible is not None:
        return parse_visible(cuda_visible)
    return parse_nvidia_smi(listing())


def host_devices(settings: Settings | None = None) -> list[str]:
    """This worker's GPUs (empty on a CPU-only host); found once per worker."""
    global _host
    if _host is None:
        configured = (settings or get_settings()).train_devices
        # CUDA's own variable, read as the worker was started (pool processes overwrite it).
        _host = discover(configured, os.environ.get("CUDA_VISIBLE_DEVICES"))
    return list(_host)


def pinned_device() -> str | None:
    """The GPU this pool process was given (as CUDA_VISIBLE_DEVICES names it), or None: a
    CPU-only host, a process past the GPUs, or not a pool process."""
    return _pinned


@signals.worker_init.connect
def _discover_before_fork(**_: Any) -> None:
    """Main process, before the pool starts: find the GPUs once, for every child to inherit."""
    devices = host_devices()
    if devices:
        log.info("training on GPUs %s, one pool process each", ",".join(devices),
                 extra={"devices": devices})  # fmt: skip


@signals.worker_process_init.connect
def _pin_this_process(**_: Any) -> None:
    """A new pool process, before its first task: see only the GPU of its pool slot."""
    global _pinned
    devices = host_devices()
    index = getattr(current_process(), "index", None)
    if not devices or index is None:
        return  # a CPU-only host (nothing to hide), or not a prefork pool process
    device = devices[index] if index < len(devices) else ""
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    _pinned = device or None
    log.info(
        f"pool process {index} pinned to GPU {device}" if device
        else f"pool process {index} sees no GPU: the worker has {len(devices)}",
        extra={"pool_index": index, "device": _pinned, "pid": os.getpid()},
    )  # fmt: skip
