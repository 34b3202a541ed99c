"""Processing an upload into a dataset: the `data` queue's work."""

from __future__ import annotations

import logging
import shutil

from app.datasets.service import limits_from, mark_failed, upload_dir
from app.db import transaction
from app.models import Dataset
from app.models.base import utcnow
from ml.datasets.errors import IngestError
from ml.datasets.ingest import ingest
from ml.datasets.options import IngestOptions
from workers.context import context

log = logging.getLogger("hone.worker.datasets")


def process_dataset(dataset_id: str) -> None:
    ctx = context()
    settings = ctx.settings
    with transaction(ctx.sessions) as session:
        row = session.get(Dataset, dataset_id)
        if row is None or row.status != "processing":
            return  # deleted, or already processed by an earlier delivery
        opts = dict(row.options)
        options = IngestOptions(
            task=row.task,  # type: ignore[arg-type]
            filename=str(opts.get("filename", "")),
            multilabel=row.multilabel,
            text_column=str(opts.get("text_column", "text")),
            label_column=str(opts.get("label_column", "label")),
        )
    folder = upload_dir(settings, dataset_id)
    scratch = folder / "scratch"
    try:
        result = ingest(
            folder / "upload",
            options,
            limits_from(settings),
            settings.data_dir / "datasets",
            scratch,
        )
    except IngestError as exc:
        _finish_failed(dataset_id, exc.code, exc.message, exc.status)
    except Exception:
        log.exception("dataset processing crashed", extra={"dataset_id": dataset_id})
        _finish_failed(
            dataset_id,
            "processing_error",
            "Processing the upload failed unexpectedly; the operators have the details in the "
            "worker log. Try again, or contact them if it keeps failing.",
            500,
        )
    else:
        with transaction(ctx.sessions) as session:
            row = session.get(Dataset, dataset_id)
            if row is not None and row.status == "processing":
                row.status = "ready"
                row.sha256 = result.sha256
                row.labels = list(result.manifest["labels"])
                row.num_examples = len(result.manifest["examples"])
                row.label_counts = dict(result.report["label_counts"])
                row.report = result.report
                row.finished_at = utcnow()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _finish_failed(dataset_id: str, code: str, message: str, status: int) -> None:
    with transaction(context().sessions) as session:
        row = session.get(Dataset, dataset_id)
        if row is not None and row.status == "processing":
            mark_failed(row, code, message, status)
