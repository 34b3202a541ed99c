"""A finished training run becomes a registered model version.

(a) the artifact is written to a staging directory in the job's work dir and its serving
runtime chosen there; (b) one transaction reserves the version (see app/registry/registration);
(c) the staged directory is published to the store under the version's URI (every file, then
the listing that makes it visible: app/storage/store.py); (d) one transaction marks the
version ready and the job succeeded (app/jobs/lifecycle.py `finish`, which removes the job's
checkpoints once that commits). A retry after a crash at any point reuses the version, and a
version is ready only once every object of it is in the store.
"""

from __future__ import annotations

import logging
import platform
import shutil
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.db import transaction
from app.jobs import lifecycle
from app.jobs.lifecycle import ClaimedJob
from app.jobs.states import SUCCEEDED
from app.models import Job
from app.registry.registration import NewVersion, mark_ready, reserve_version
from app.storage.places import Storage
from ml.training.spec import contract_method
from workers.job_hooks import JobHooks
from workers.job_inputs import JobInputs
from workers.jsonsafe import jsonable

if TYPE_CHECKING:
    from ml.training.run import TrainOutcome

log = logging.getLogger("hone.worker.registration")


class Cancelled(Exception):
    """The job was cancelled before its version was reserved: register nothing."""


class LeaseLost(Exception):
    """Another attempt owns the job now; it will register the model."""


@dataclass(frozen=True)
class Registered:
    name: str
    version: int


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("torch", "timm", "transformers", "hone"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


# Dynamic int8 quantization scales activations per batch, so with dynamic batching an input's
# answer would depend on the other requests in its batch. Until int8 runs with static scales
# (or batch size 1), served versions choose between eager torch and ONNX fp32;
# bench/runtimes.py still measures int8.
SERVING_CANDIDATES = ("torch", "onnx_fp32")


def _choose_runtime(staged: Path, inputs: JobInputs, hooks: JobHooks) -> dict[str, Any]:
    """prepare_serving's report; eager torch with the reason when it cannot run."""
    from ml.inference.serving import prepare_serving
    from workers.serving_inputs import serving_inputs

    try:
        val_inputs, val_labels = serving_inputs(inputs.spec)
        report = prepare_serving(staged, val_inputs, val_labels, candidates=SERVING_CANDIDATES)
    except Exception as exc:  # an export problem must never fail a trained job
        log.warning(
            "choosing a serving runtime failed", exc_info=True, extra={"job_id": hooks.job_id}
        )
        report = {"chosen": "torch", "reason": f"runtime selection failed: {type(exc).__name__}"}
    hooks.event(
        "info",
        f"serving runtime: {report['chosen']} ({report['reason']})",
        data={"runtime": report["chosen"]},
    )
    return jsonable(report)


def _manifest(
    job: ClaimedJob,
    inputs: JobInputs,
    outcome: TrainOutcome,
    runtime: dict[str, Any],
    versions: dict[str, str],
) -> dict[str, Any]:
    backbone = inputs.spec.backbone
    return jsonable(
        {
            "dataset_id": job.dataset_id,
            "dataset_sha256": inputs.dataset_sha256,
            "validation_dataset_id": job.validation_dataset_id,
            "validation_dataset_sha256": inputs.validation_dataset_sha256,
            "validation_split": job.validation_split,
            "backbone": {
                "id": backbone.id,
                "library": backbone.library,
                "arch": backbone.arch,
                "source": backbone.source,
                "weights_sha256": outcome.backbone_weights_sha256,
            },
            "method": outcome.method,
            "method_requested": job.method,
            "method_reason": outcome.method_reason,
            "hyperparameters": outcome.hyperparameters,
            "seed": job.seed,
            "class_weights": outcome.class_weights,
            "versions": versions,
            "runtime": runtime,
        }
    )


def register(
    hooks: JobHooks, job: ClaimedJob, inputs: JobInputs, outcome: TrainOutcome, storage: Storage
) -> Registered:
    """Steps (a)-(d); Cancelled or LeaseLost when the job is no longer this attempt's to finish."""
    from ml.artifacts import save_artifact

    sessions, owner = hooks.sessions, hooks.owner
    versions = library_versions()
    staged = inputs.spec.work_dir / "artifact"
    shutil.rmtree(staged, ignore_errors=True)  # a half-written one from a crashed attempt
    config = outcome.artifact_config(inputs.spec.backbone, versions)
    save_artifact(staged, outcome.model, config, outcome.tokenizer, files=outcome.artifact_files)
    runtime = _choose_runtime(staged, inputs, hooks)
    metrics = jsonable(outcome.metrics)
    new = NewVersion(
        project_id=job.project_id, name=job.model_name, task=inputs.task, job_id=job.id,
        dataset_id=job.dataset_id, backbone=job.backbone, labels=outcome.labels,
        metrics=metrics, manifest=_manifest(job, inputs, outcome, runtime, versions),
        runtime=str(runtime["chosen"]),
    )  # fmt: skip
    with transaction(sessions) as session:
        row = session.get(Job, job.id)
        if row is None or row.lease_owner != owner:
            raise LeaseLost(job.id)
        if row.cancel_requested:
            raise Cancelled(job.id)
        uri = partial(storage.version_uri, job.project_id, job.model_name)
        version = reserve_version(session, new, uri)
        version_id, number, final = version.id, version.version, version.artifact_uri
    if not storage.version_published(final):  # else: published by an attempt that then crashed
        storage.publish_version(staged, final)
    shutil.rmtree(staged, ignore_errors=True)
    # The job's headline figures: the version's top-level numbers (accuracy and macro-F1, or
    # MAE, RMSE, R² and Spearman), prefixed as the epochs' validation metrics are.
    summary = {"val_loss": metrics.get("val_loss")} | {
        f"val_{name}": value
        for name, value in metrics.items()
        if isinstance(value, int | float) and not name.startswith(("val_", "num_"))
    }
    hooks.heartbeat.stop()
    with transaction(sessions) as session:
        mark_ready(session, version_id)
        done = lifecycle.finish(
            session, storage, job.id, owner, SUCCEEDED,
            f"registered model {job.model_name} version {number}",
            data={"model": job.model_name, "version": number, "method": outcome.method},
            model_version_id=version_id,
            method_chosen=contract_method(outcome.method),
            method_reason=outcome.method_reason,
            hyperparameters=jsonable(outcome.hyperparameters),
            metrics=hooks.metrics | summary,
            progress={**hooks.last_progress, "eta_seconds": 0},
        )  # fmt: skip
        if not done:
            raise LeaseLost(job.id)  # rolls back: the attempt that owns the job finishes it
    return Registered(job.model_name, number)
