"""Processing an upload into a dataset: the `data` queue's work.

A delivery claims the dataset's lease or does nothing (a duplicate delivery of a dataset that
another attempt holds, or that is already ready or failed). While it ingests, a heartbeat
keeps the lease; the outcome (ready or failed) is written only by the attempt that holds it,
so a dataset is processed to `ready` exactly once however often its message arrives. An
attempt whose worker dies leaves its lease to expire; the reaper (workers/reaper.py) then
sends the dataset again, and past job_max_attempts fails it.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from app.datasets.service import attempts_exhausted, failure, limits_from, upload_dir
from app.db import transaction
from app.models import Dataset
from app.models.base import utcnow
from ml.datasets.errors import IngestError
from ml.datasets.ingest import IngestResult, ingest
from ml.datasets.options import IngestOptions
from workers import leases
from workers.context import WorkerContext, context
from workers.heartbeat import Heartbeat

log = logging.getLogger("hone.worker.datasets")


def process_dataset(dataset_id: str) -> None:
    ctx = context()
    settings = ctx.settings
    owner = leases.new_owner()
    with transaction(ctx.sessions) as session:
        attempt = leases.claim_dataset(session, dataset_id, owner, settings.lease_seconds)
        row = session.get(Dataset, dataset_id) if attempt is not None else None
        if attempt is None or row is None:
            log.info(
                "dataset skipped: ready, failed, deleted, or held by a live attempt",
                extra={"dataset_id": dataset_id},
            )
            return
        opts = dict(row.options)
        if attempt > settings.job_max_attempts:
            leases.release_dataset(
                session, dataset_id, owner, **attempts_exhausted(opts, attempt - 1)
            )
            log.error("dataset failed: worker lost too often", extra={"dataset_id": dataset_id})
            shutil.rmtree(upload_dir(settings, dataset_id), ignore_errors=True)
            return
        options = IngestOptions(
            task=row.task,  # type: ignore[arg-type]
            filename=str(opts.get("filename", "")),
            multilabel=row.multilabel,
            text_column=str(opts.get("text_column", "text")),
            label_column=str(opts.get("label_column", "label")),
        )
    log.info("dataset claimed", extra={"dataset_id": dataset_id, "attempt": attempt})
    heartbeat = Heartbeat(
        ctx.sessions, dataset_id, owner, settings.lease_seconds, renew=leases.renew_dataset
    )
    with heartbeat:
        outcome = _ingest(ctx, dataset_id, options, opts)
    with transaction(ctx.sessions) as session:
        finished = leases.release_dataset(session, dataset_id, owner, **outcome)
    if not finished:
        # Our lease expired (the worker stalled) and another attempt has the dataset now: it
        # finishes it, and removes the upload.
        log.warning(
            "lease lost; leaving the dataset to its new attempt", extra={"dataset_id": dataset_id}
        )
        return
    shutil.rmtree(upload_dir(settings, dataset_id), ignore_errors=True)
    log.info("dataset %s", outcome["status"], extra={"dataset_id": dataset_id, "attempt": attempt})


def _ingest(
    ctx: WorkerContext, dataset_id: str, options: IngestOptions, opts: dict[str, Any]
) -> dict[str, Any]:
    """The dataset's final column values: ready with its audit, or failed with the reason."""
    settings = ctx.settings
    folder = upload_dir(settings, dataset_id)
    try:
        result = ingest(
            folder / "upload",
            options,
            limits_from(settings),
            settings.data_dir / "datasets",
            folder / "scratch",
        )
    except IngestError as exc:
        return failure(opts, exc.code, exc.message, exc.status, exc.report)
    except Exception:
        log.exception("dataset processing crashed", extra={"dataset_id": dataset_id})
        return failure(
            opts,
            "processing_error",
            "Processing the upload failed unexpectedly; the operators have the details in the "
            "worker log. Try again, or contact them if it keeps failing.",
            500,
        )
    return _ready(result)


def _ready(result: IngestResult) -> dict[str, Any]:
    return {
        "status": "ready",
        "sha256": result.sha256,
        "labels": list(result.manifest["labels"]),
        "num_examples": len(result.manifest["examples"]),
        "label_counts": dict(result.report["label_counts"]),
        "report": result.report,
        "finished_at": utcnow(),
    }
