"""From a claimed job row to the engine's TrainSpec: datasets on disk, backbone from the
catalog, the job's work directory. Anything missing is a JobFailure with advice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from app.backbones.availability import unavailable_reason
from app.config import Settings
from app.jobs.lifecycle import ClaimedJob
from app.models import Dataset
from app.storage.errors import StoreMissing
from app.storage.places import Storage
from ml.backbones.catalog import is_available, load_catalog
from ml.backbones.spec import BackboneSpec
from ml.training.spec import CHECKPOINT, Method, TrainSpec
from workers.failures import JobFailure


@dataclass(frozen=True)
class JobInputs:
    spec: TrainSpec
    task: str
    dataset_sha256: str
    validation_dataset_sha256: str | None


def _dataset_dir(session: Session, storage: Storage, dataset_id: str) -> tuple[Path, str, str]:
    """(local directory, sha256, task) of a ready dataset, fetched from the store if needed."""
    row = session.get(Dataset, dataset_id)
    if row is None or row.status != "ready" or not row.sha256:
        raise JobFailure(
            "dataset_missing",
            f"Dataset {dataset_id} was deleted or is not ready; create a new job with a ready "
            "dataset.",
        )
    try:
        folder = storage.dataset_dir(row.sha256)
    except StoreMissing:
        raise JobFailure(
            "dataset_missing",
            f"The files of dataset {dataset_id} are missing from the store; upload it again.",
        ) from None
    return folder, row.sha256, row.task


def _backbone(settings: Settings, backbone_id: str) -> BackboneSpec:
    spec = load_catalog(settings.backbones_files).get(backbone_id)
    if spec is None:
        raise JobFailure(
            "unknown_backbone",
            f"Backbone {backbone_id!r} is no longer in this worker's catalog; the operators "
            "removed it, or the workers' HONE_BACKBONES_FILES differ from the API's.",
        )
    if not is_available(spec, settings.local_cache_dir):
        raise JobFailure(
            "backbone_unavailable",
            f"Backbone {backbone_id!r} is not available on the worker: {unavailable_reason(spec)}",
        )
    return spec


def job_inputs(
    session: Session, settings: Settings, storage: Storage, job: ClaimedJob
) -> JobInputs:
    """The job's TrainSpec, with its datasets on local disk and its work directory holding
    the latest checkpoint in the store (written by any earlier attempt, on any host)."""
    dataset_dir, sha, task = _dataset_dir(session, storage, job.dataset_id)
    val_dir, val_sha = None, None
    if job.validation_dataset_id:
        val_dir, val_sha, _ = _dataset_dir(session, storage, job.validation_dataset_id)
    work = storage.work_dir(job.id)
    storage.restore_checkpoint(job.id, work / CHECKPOINT)
    method: Method = job.method  # type: ignore[assignment]
    spec = TrainSpec(
        dataset_dir=dataset_dir,
        backbone=_backbone(settings, job.backbone),
        work_dir=work,
        cache_dir=settings.local_cache_dir,
        method=method,
        hyperparameters=job.hyperparameters,
        validation_dataset_dir=val_dir,
        validation_split=job.validation_split,
        seed=job.seed,
        checkpoint_every_seconds=settings.checkpoint_every_seconds,
    )
    return JobInputs(spec, task, sha, val_sha)
