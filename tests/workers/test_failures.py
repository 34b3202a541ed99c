"""What a failed job tells its owner: a code and advice, never a traceback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from ml.datasets.store import DatasetFormatError
from workers.failures import JobFailure, describe
from workers.jsonsafe import jsonable


@pytest.mark.parametrize(
    ("exc", "code", "expected"),
    [
        (JobFailure("dataset_missing", "gone"), "dataset_missing", True),
        (MemoryError(), "out_of_memory", True),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), "out_of_memory", True),
        (RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"),
         "out_of_memory", True),
        (LocalEntryNotFoundError("no cache"), "backbone_unavailable", True),
        (DatasetFormatError("bad manifest"), "dataset_corrupt", False),
        (ValueError("shapes (3,) and (4,) do not match"), "training_error", False),
    ],
)  # fmt: skip
def test_failures_map_to_codes_and_plain_messages(
    exc: BaseException, code: str, expected: bool
) -> None:
    failure = describe(exc, "job_123")
    assert (failure.code, failure.expected) == (code, expected)
    assert "Traceback" not in failure.message and failure.message
    if code == "training_error":
        assert "job_123" in failure.message and "shapes" not in failure.message


def test_training_values_become_valid_json() -> None:
    value = {
        "loss": float("nan"), "inf": math.inf, "f1": np.float32(0.5), "n": np.int64(3),
        "t": torch.tensor(2.0), "pair": (1, 2), 3: [True, None, "x"],
    }  # fmt: skip
    assert jsonable(value) == {
        "loss": None, "inf": None, "f1": 0.5, "n": 3, "t": 2.0, "pair": [1, 2],
        "3": [True, None, "x"],
    }  # fmt: skip
