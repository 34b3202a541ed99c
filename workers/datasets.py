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
from app.storage.errors import StoreMissing
from ml.datasets.errors import IngestError
from ml.datasets.ingest import ingest
from ml.datasets.options import IngestOptions
from workers import leases
from workers.context import WorkerContext, context
from workers.heartbeat import Heartbeat
from workers.patience import Interrupted, patiently

log = logging.getLogger("hone.worker.datasets")


def process_dataset(dataset_id: str) -> None:
    ctx = context()
    owner = leases.new_owner()
    extra = {"dataset_id": dataset_id}
    patiently(lambda: _process(ctx, dataset_id, owner), what="processing a dataset", extra=extra)


def _process(ctx: WorkerContext, dataset_id: str, owner: str) -> None:
    settings = ctx.settings
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
            task=row.task,
            filename=str(opts.get("filename", "")),
            multilabel=row.multilabel,
            text_column=str(opts.get("text_column", "text")),
            label_column=str(opts.get("label_column", "label")),
            target_column=str(opts.get("target_column", "target")),
        )
    log.info("dataset claimed", extra={"dataset_id": dataset_id, "attempt": attempt})
    heartbeat = Heartbeat(
        ctx.sessions, dataset_id, owner, settings.lease_seconds, renew=lifecycle.renew
    )
    with heartbeat:
        try:
            outcome = _ingest(ctx, heartbeat, dataset_id, options, opts)
        except Interrupted:
            outcome = None  # the lease was lost while the store was down
    if outcome is None or not patiently(
        lambda: _finish(ctx, dataset_id, owner, outcome),
        what="recording a processed dataset",
        extra={"dataset_id": dataset_id},
    ):
        # Our lease expired (the worker stalled) and another attempt has the dataset now: it
        # finishes it, and removes the upload.
        log.warning(
            "lease lost; leaving the dataset to its new attempt", extra={"dataset_id": dataset_id}
        )
        return
    log.info("dataset %s", outcome["status"], extra={"dataset_id": dataset_id, "attempt": attempt})


def _finish(ctx: WorkerContext, dataset_id: str, owner: str, outcome: dict[str, Any]) -> bool:
    with transaction(ctx.sessions) as session:
        return lifecycle.finish(session, ctx.storage, dataset_id, owner, outcome)


def _ingest(
    ctx: WorkerContext,
    heartbeat: Heartbeat,
    dataset_id: str,
    options: IngestOptions,
    opts: dict[str, Any],
) -> dict[str, Any]:
    """The dataset's final column values: ready with its audit, or failed with the reason.

    The upload comes from the store into a private scratch directory on this host; the
    dataset is built beside this host's cached datasets and published to the store before
    the row says ready, so a training worker on any host finds it there. While the store is
    unreachable, each step waits for it (workers/patience.py)."""
    storage = ctx.storage
    scratch = storage.scratch()
    extra = {"dataset_id": dataset_id}

    def stop() -> str | None:
        return "lease lost" if heartbeat.lost else None

    try:
        upload = scratch / "upload"
        patiently(
            lambda: storage.fetch_upload(dataset_id, upload),
            what="reading an upload", extra=extra, stop=stop,
        )  # fmt: skip
        result = ingest(
            upload, options, limits_from(ctx.settings), storage.local_datasets(), scratch / "work"
        )
        patiently(
            lambda: storage.publish_dataset(result.path),
            what="publishing a dataset", extra=extra, stop=stop,
        )  # fmt: skip
    except Interrupted:
        raise
    except StoreMissing:
        return lifecycle.failure(
            opts,
            "upload_missing",
            "The uploaded file is no longer in the store (it was removed before it could be "
            "processed); upload it again.",
            500,
        )
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
