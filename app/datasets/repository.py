"""All SQL of the datasets domain: the API's reads, and the lease transitions the workers make
through app/datasets/lifecycle.py (their compare-and-set is app/leasing.py's). Flushes, never
commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import leasing
from app.datasets.states import PROCESSING
from app.models import Dataset, Job, ModelVersion, RegisteredModel
from app.pagination import page


def get(session: Session, project_id: str, dataset_id: str) -> Dataset | None:
    return session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.project_id == project_id)
    )


def list_page(
    session: Session, project_id: str, *, limit: int, after: str | None
) -> tuple[Sequence[Dataset], bool]:
    stmt = select(Dataset).where(Dataset.project_id == project_id)
    return page(session, stmt, Dataset.id, limit=limit, after=after)


def active_jobs_using(session: Session, dataset_id: str) -> Sequence[str]:
    stmt = select(Job.id).where(
        (Job.dataset_id == dataset_id) | (Job.validation_dataset_id == dataset_id),
        Job.status.in_(("queued", "running", "cancelling")),
    )
    return session.scalars(stmt).all()


def versions_trained_on(session: Session, dataset_id: str) -> list[dict[str, object]]:
    stmt = (
        select(RegisteredModel.name, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.dataset_id == dataset_id)
        .order_by(RegisteredModel.name, ModelVersion.version)
    )
    return [{"name": n, "version": v} for n, v in session.execute(stmt)]


def processing_among(session: Session, dataset_ids: Collection[str]) -> set[str]:
    """Which of these ids are datasets still being processed (their uploads are needed)."""
    if not dataset_ids:
        return set()
    rows = session.scalars(
        select(Dataset.id).where(Dataset.id.in_(list(dataset_ids)), Dataset.status == PROCESSING)
    )
    return set(rows)


def other_rows_with_sha(session: Session, sha256: str, exclude_id: str) -> int:
    stmt = select(func.count()).where(Dataset.sha256 == sha256, Dataset.id != exclude_id)
    return int(session.scalar(stmt) or 0)


# ---- leases (app/datasets/lifecycle.py) --------------------------------------------------

# A dataset is held while an attempt has its lease, and waits for one otherwise.
_HELD = (Dataset.status == PROCESSING) & Dataset.lease_owner.is_not(None)
_WAITING = (Dataset.status == PROCESSING) & Dataset.lease_owner.is_(None)


def claim(
    session: Session, dataset_id: str, owner: str, lease_seconds: float, now: datetime
) -> int | None:
    """Lease a processing dataset no live attempt holds; this attempt's number, or None."""
    claimable = Dataset.status == PROCESSING
    if not leasing.claim(session, Dataset, dataset_id, owner, lease_seconds, now, claimable):
        return None
    return session.scalar(select(Dataset.attempts).where(Dataset.id == dataset_id))


def renew(session: Session, dataset_id: str, owner: str, lease_seconds: float) -> bool:
    return leasing.renew(session, Dataset, dataset_id, owner, lease_seconds, {PROCESSING})


def release(session: Session, dataset_id: str, owner: str, **values: Any) -> bool:
    """End `owner`'s hold on the dataset, setting `values` (ready or failed) at once."""
    values = {**leasing.RELEASED, **values}
    return leasing.set_if_owned(session, Dataset, dataset_id, owner, {PROCESSING}, values)


def expired_leases(session: Session, now: datetime) -> list[Dataset]:
    return leasing.expired(session, Dataset, _HELD, now)


def take_over(session: Session, dataset: Dataset, now: datetime, **values: object) -> bool:
    return leasing.take_over(session, dataset, now, **values)


def any_processing(session: Session, now: datetime) -> bool:
    return leasing.any_live(session, Dataset, _HELD, now)


def waiting(session: Session, now: datetime, sent_before: datetime | None) -> list[str]:
    return leasing.waiting(session, Dataset, _WAITING, now, sent_before)


def mark_sent(session: Session, dataset_id: str, now: datetime) -> bool:
    return leasing.mark_sent(session, Dataset, dataset_id, _WAITING, now)


def mark_unsent(session: Session, dataset_ids: Collection[str], sent_at: datetime) -> None:
    leasing.mark_unsent(session, Dataset, dataset_ids, sent_at)
