"""A dataset's processing, as the workers drive it: claim, heartbeat, finish, take over.

processing (an attempt claims the lease) -> ready | failed. Each transition is a
compare-and-set on the lease (app/leasing.py), so:
- at most one live attempt: a claim needs the dataset processing with no live lease; a
  duplicate delivery (a live lease, or a dataset already ready or failed) claims nothing;
- a lease expires unless renewed: the heartbeat renews it every lease/3 seconds, and an
  attempt that stalled past the expiry has lost the dataset; its writes match no row;
- only the holder writes ready or failed, so a dataset is processed to `ready` exactly once
  however often its message arrives; every end removes the upload, after the commit, once
  (`_ended`). A crashed attempt leaves it for the next one;
- a lost worker's dataset is taken over by a reaper and sent again, or past
  job_max_attempts failed with `processing_attempts_exhausted`.

Flushes, never commits: the worker's transaction (app/db.py `transaction`) is the boundary.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy.orm import Session

from app.datasets import repository
from app.datasets.states import FAILED, READY
from app.db import after_commit
from app.models.base import created_at, utcnow
from app.storage.places import Storage

if TYPE_CHECKING:
    from ml.datasets.ingest import IngestResult

# A dataset whose processing crashed its worker more than job_max_attempts times.
ATTEMPTS_EXHAUSTED = "processing_attempts_exhausted"


class TakenOver(NamedTuple):
    resend: list[str]  # queued again: the caller sends their messages
    failed: list[str]  # past their attempts: failed, their uploads removed


def claim(session: Session, dataset_id: str, owner: str, lease_seconds: float) -> int | None:
    """Take a `processing` dataset no live attempt holds; this attempt's number, or None
    (another attempt holds it, or it is ready, failed or deleted: a duplicate delivery)."""
    return repository.claim(session, dataset_id, owner, lease_seconds, utcnow())


def renew(session: Session, dataset_id: str, owner: str, lease_seconds: float) -> bool | None:
    """The heartbeat: extend the lease. False (a dataset has no cancel flag), or None once it
    is not ours."""
    return False if repository.renew(session, dataset_id, owner, lease_seconds) else None


def finish(
    session: Session, storage: Storage, dataset_id: str, owner: str, outcome: dict[str, Any]
) -> bool:
    """End this attempt's dataset with `outcome` (`ready(...)` or `failure(...)`); False, with
    nothing written, when the attempt no longer holds it (its new attempt finishes it)."""
    if not repository.release(session, dataset_id, owner, **outcome):
        return False
    _ended(session, storage, dataset_id)
    return True


def give_up(
    session: Session,
    storage: Storage,
    dataset_id: str,
    owner: str,
    options: dict[str, Any],
    crashes: int,
) -> bool:
    """Fail a dataset whose processing keeps dying with its worker (`crashes` times) instead
    of letting it kill another: the claim that found it past job_max_attempts ends it."""
    return finish(session, storage, dataset_id, owner, _attempts_exhausted(options, crashes))


def take_over_expired(
    session: Session, storage: Storage, max_attempts: int, now: datetime
) -> TakenOver:
    """The reaper's part: every dataset whose lease expired lost its worker. It is sent again,
    or, once it has used up `max_attempts`, failed."""
    taken = TakenOver([], [])
    for row in repository.expired_leases(session, now):
        if row.attempts >= max_attempts:
            values = _attempts_exhausted(row.options, row.attempts)
            if repository.take_over(session, row, now, **values):
                _ended(session, storage, row.id)
                taken.failed.append(row.id)
        elif repository.take_over(session, row, now, enqueued_at=now):
            taken.resend.append(row.id)
    return taken


def to_send(session: Session, now: datetime, resend_before: datetime) -> list[str]:
    """Processing datasets whose message must be sent, marked sent at `now`: those never sent
    (the broker was down at upload), and those sent before `resend_before` while none is being
    processed, whose message the broker probably dropped. While one is processed, older
    messages are presumed waiting behind it."""
    sent_before = None if repository.any_processing(session, now) else resend_before
    return [
        dataset_id
        for dataset_id in repository.waiting(session, now, sent_before)
        if repository.mark_sent(session, dataset_id, now)
    ]


def not_sent(session: Session, dataset_ids: list[str], sent_at: datetime) -> None:
    """The broker refused these datasets' messages (marked sent at `sent_at`): "not sent"
    again, so the next pass tries them at once."""
    repository.mark_unsent(session, dataset_ids, sent_at)


def orphan_uploads(
    session: Session, storage: Storage, now: datetime, older_than: timedelta
) -> list[str]:
    """Uploads in the store that no processing dataset needs, older than `older_than`: an
    upload stored by a request whose row was then never committed (the database or the
    request failed in between), or whose removal after processing failed. Ids are
    time-ordered (app/models/base.py new_id), which dates an upload without a store call."""
    cutoff = now - older_than
    stored = [i for i in storage.upload_ids() if (created_at(i) or now) < cutoff]
    needed = repository.processing_among(session, stored)
    return [i for i in stored if i not in needed]


def ready(result: IngestResult) -> dict[str, Any]:
    """The column values of a processed dataset. `labels` holds the label names, or a
    regression dataset's target names (which has no label counts)."""
    return {
        "status": READY,
        "sha256": result.sha256,
        "labels": list(result.names),
        "num_examples": len(result.manifest["examples"]),
        "label_counts": dict(result.report.get("label_counts", {})),
        "report": result.report,
        "finished_at": utcnow(),
    }


def failure(
    options: dict[str, Any],
    code: str,
    message: str,
    status: int,
    report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of a failed dataset (written by the attempt, or the reaper, that
    ends it); `status` is the HTTP status its problem is answered with, `report` the audit of
    what was read when the refusal came after reading the examples."""
    return {
        "status": FAILED,
        "error_code": code,
        "error_message": message,
        "options": {**options, "error_status": status},
        "report": report,
        "finished_at": utcnow(),
    }


def _attempts_exhausted(options: dict[str, Any], crashes: int) -> dict[str, Any]:
    message = (
        f"Processing this upload stopped its worker {crashes} times (most likely it ran out of "
        "memory, or the machine was lost), so it will not be tried again. Try a smaller upload "
        "(fewer or smaller files), or ask the operators to look for this dataset's id in the "
        "worker logs."
    )
    return failure(options, ATTEMPTS_EXHAUSTED, message, 500)


def _ended(session: Session, storage: Storage, dataset_id: str) -> None:
    """What every end of a dataset's processing does once its row says so: the upload, read
    by no one any more, is removed after the commit."""
    after_commit(session, partial(storage.discard, storage.drop_upload, dataset_id))
