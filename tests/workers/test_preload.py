"""The worker's main process imports the training stack before forking, without CUDA."""

import json
import os
import subprocess
import sys

_PROBE = """
import json, os, sys
from workers.preload import preload
names = preload()
import torch
print(json.dumps({
    "missing": [n for n in names if n not in sys.modules],
    "cuda_initialized": torch.cuda.is_initialized(),
    "omp": os.environ.get("OMP_WAIT_POLICY"),
    "nvml": os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK"),
}))
"""


def _probe(**env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env=clean | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_preload_imports_the_training_stack_without_initialising_cuda() -> None:
    result = _probe()
    assert result["missing"] == []
    assert result["cuda_initialized"] is False
    assert result["omp"] == "PASSIVE"
    assert result["nvml"] == "1"


def test_an_operators_thread_policy_is_kept() -> None:
    assert _probe(OMP_WAIT_POLICY="ACTIVE")["omp"] == "ACTIVE"
