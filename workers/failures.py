"""Why a job failed, in words for its owner: a code and a message, never a traceback.

Expected failures get their own code and advice; anything else is `training_error`, with the
traceback in the worker's log (under the job id) for the operators.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import AppError


class JobFailure(Exception):
    """An expected reason to fail a job, raised by the worker's own checks."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    expected: bool  # False: log the traceback, it is a bug or an operator's problem


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _is_hub_failure(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    return isinstance(exc, HfHubHTTPError | LocalEntryNotFoundError | ConnectionError)


def describe(exc: BaseException, job_id: str) -> Failure:
    if isinstance(exc, JobFailure):
        return Failure(exc.code, exc.message, expected=True)
    if isinstance(exc, AppError):  # a registry rule, e.g. the model name taken by another task
        return Failure(exc.code, exc.detail, expected=True)
    if _is_out_of_memory(exc):
        return Failure(
            "out_of_memory",
            "Training ran out of memory. Try a smaller batch_size (or image_size / "
            "max_length), a smaller backbone, or method linear_probe.",
            expected=True,
        )
    if _is_hub_failure(exc):
        return Failure(
            "backbone_unavailable",
            "The backbone's weights could not be downloaded from the Hugging Face hub, and "
            "they are not in the workers' local cache. Retry when the hub is reachable, or "
            "ask the operators to pre-download them.",
            expected=True,
        )
    from ml.datasets.store import DatasetFormatError

    if isinstance(exc, DatasetFormatError):
        return Failure(
            "dataset_corrupt",
            "The stored dataset is damaged or was changed on disk; upload it again.",
            expected=False,
        )
    return Failure(
        "training_error",
        f"Training failed unexpectedly. The operators have the details in the worker log "
        f"under job {job_id}; retrying with another backbone or method may work around it.",
        expected=False,
    )
