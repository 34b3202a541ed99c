"""How many CPU threads inference uses, decided once per process.

torch's intra-op pool is process-wide and resizing it between calls costs more than the calls,
so the first caller decides and later calls only read the answer. ONNX Runtime sessions get the
same number, so switching runtimes does not change how much of the machine a model takes.
"""

import os
import threading

import torch

_lock = threading.Lock()
_configured: int | None = None


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch's thread count on the first call; return the count in effect."""
    global _configured
    with _lock:
        if _configured is None:
            _configured = threads or available_cores()
            torch.set_num_threads(_configured)
        return _configured
