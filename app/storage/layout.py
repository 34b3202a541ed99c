"""The one place that names where each durable thing lives in the store.

uploads/<dataset_id>                      an upload, until its dataset is processed
datasets/<sha256>/                        a processed dataset (published directory)
models/<project_id>/<name>/<version>/     a model version's artifact (published directory)
jobs/<job_id>/checkpoint.json             which checkpoint is the job's latest
jobs/<job_id>/checkpoints/<n>/            a job's checkpoints (published directories)
ui/session-secret                         the dashboard's cookie-signing secret (shared by hosts)
"""

from __future__ import annotations

UPLOADS = "uploads"


def upload(dataset_id: str) -> str:
    return f"{UPLOADS}/{dataset_id}"


def upload_id(key: str) -> str:
    return key.removeprefix(f"{UPLOADS}/")


def dataset(sha256: str) -> str:
    return f"datasets/{sha256}"


def model_version(project_id: str, name: str, version: int) -> str:
    return f"models/{project_id}/{name}/{version}"


def job(job_id: str) -> str:
    return f"jobs/{job_id}"


def checkpoint_pointer(job_id: str) -> str:
    return f"{job(job_id)}/checkpoint.json"


def checkpoint(job_id: str, number: int) -> str:
    return f"{job(job_id)}/checkpoints/{number}"


def ui_secret() -> str:
    return "ui/session-secret"
