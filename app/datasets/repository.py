"""All SQL of the datasets domain. Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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


def other_rows_with_sha(session: Session, sha256: str, exclude_id: str) -> int:
    stmt = select(func.count()).where(Dataset.sha256 == sha256, Dataset.id != exclude_id)
    return int(session.scalar(stmt) or 0)
