"""Which device a job runs on, and how many CPU threads torch may use there."""

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(name: str = "auto") -> torch.device:
    """`auto`: the GPU when there is one; anything else is taken literally ("cpu", "cuda:1")."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available")
    return device


def usable_cpus() -> int:
    """Cores this process may run on (a container's CPU set, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads() -> int:
    """One intra-op thread per usable core: more only oversubscribes and slows every step."""
    threads = usable_cpus()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with `count` intra-op threads, then restore the previous setting.

    For many tiny operations (a linear probe's LBFGS steps) a second thread costs more in
    synchronisation than it saves, and when other processes load the CPU, every parallel
    region waits for a descheduled thread: measured 60x slower than one thread here.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on CUDA; fp32 on the CPU, where reduced precision is slower
    (docs/measurements.md)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
