"""Warm imports in the worker's main process, so every forked job process starts ready.

With one task per child process, each job runs in a freshly forked child. If the parent has
not imported torch, timm and transformers, every job pays those imports (seconds) between
being picked up and training. Importing them in the parent before the pool forks makes
the children inherit them. Importing is not initialising: nothing here touches CUDA, and
``PYTORCH_NVML_BASED_CUDA_CHECK`` makes any ``torch.cuda.is_available()`` call in the
parent use NVML, which stays fork-safe, rather than the CUDA driver.

``OMP_WAIT_POLICY=PASSIVE`` (unless the operator set it): torch's OpenMP threads sleep
between parallel regions instead of spinning. On cores shared with other processes (the API,
a second worker, the machine's own work) spinning threads starve the thread that holds the
work: measured 3-8x faster under load with PASSIVE (bench/RESULTS.md), and no slower alone.
Both must be set before torch is first imported, which is why this runs first.
"""

from __future__ import annotations

import importlib
import os

# What a training or dataset task imports, heaviest first.
WARM_MODULES = (
    "torch",
    "timm",
    "transformers",
    "ml.training.run",
    "ml.datasets.ingest",
    "workers.training",
    "workers.registration",
    "ml.inference.serving",
    "workers.datasets",
)


def preload() -> list[str]:
    """Set the thread and CUDA-check defaults, then import WARM_MODULES; returns their names."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    for name in WARM_MODULES:
        importlib.import_module(name)
    return list(WARM_MODULES)
