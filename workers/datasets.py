"""Processing an upload into a dataset: the `data` queue's work.

A delivery claims the dataset's lease or does nothing (a duplicate delivery of a dataset that
another attempt holds, or that is already ready or failed). While it ingests, a heartbeat
keeps the lease; the outcome (ready or failed) is written only by the attempt that holds it,
so a dataset is processed to `ready` exactly once however often its message arrives (see
app/datasets/lifecycle.py). An attempt whose worker dies leaves its lease to expire; the
reaper (workers/reaper.py) then sends the dataset again, and past job_max_attempts fails it.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from app.datasets import lifecycle
from app.datasets.limits import limits_from
from app.db import transaction
from app.models import Dataset
from ml.datasets.errors import IngestError
from ml.datasets.ingest import ingest
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
        attempt = lifecycle.claim(session, dataset_id, owner, settings.lease_seconds)
        row = session.get(Dataset, dataset_id) if attempt is not None else None
        if attempt is None or row is None:
            log.info(
                "dataset skipped: ready, failed, deleted, or held by a live attempt",
                extra={"dataset_id": dataset_id},
            )
            return
        opts = dict(row.options)
        if attempt > settings.job_max_attempts:
            lifecycle.give_up(session, ctx.storage, dataset_id, owner, opts, crashes=attempt - 1)
            log.error("dataset failed: worker lost too often", extra={"dataset_id": dataset_id})
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
        ctx.sessions, dataset_id, owner, settings.lease_seconds, renew=lifecycle.renew
    )
    with heartbeat:
        outcome = _ingest(ctx, dataset_id, options, opts)
    with transaction(ctx.sessions) as session:
        finished = lifecycle.finish(session, ctx.storage, dataset_id, owner, outcome)
    if not finished:
        # Our lease expired (the worker stalled) and another attempt has the dataset now: it
        # finishes it, and removes the upload.
        log.warning(
            "lease lost; leaving the dataset to its new attempt", extra={"dataset_id": dataset_id}
        )
        return
    log.info("dataset %s", outcome["status"], extra={"dataset_id": dataset_id, "attempt": attempt})


def _ingest(
    ctx: WorkerContext, dataset_id: str, options: IngestOptions, opts: dict[str, Any]
) -> dict[str, Any]:
    """The dataset's final column values: ready with its audit, or failed with the reason.

    The upload comes from the store into a private scratch directory on this host; the
    dataset is built beside this host's cached datasets and published to the store before
    the row says ready, so a training worker on any host finds it there."""
    storage = ctx.storage
    scratch = storage.scratch()
    try:
        storage.fetch_upload(dataset_id, scratch / "upload")
        result = ingest(
            scratch / "upload",
            options,
            limits_from(ctx.settings),
            storage.local_datasets(),
            scratch / "work",
        )
        storage.publish_dataset(result.path)
    except IngestError as exc:
        return lifecycle.failure(opts, exc.code, exc.message, exc.status, exc.report)
    except Exception:
        log.exception("dataset processing crashed", extra={"dataset_id": dataset_id})
        return lifecycle.failure(
            opts,
            "processing_error",
            "Processing the upload failed unexpectedly; the operators have the details in the "
            "worker log. Try again, or contact them if it keeps failing.",
            500,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return lifecycle.ready(result)
