"""API shapes of datasets (separate from the ORM row: internal columns never leak)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from app.models import Dataset
from app.pagination import ListOf

Task = Literal["image_classification", "text_classification"]
DatasetStatus = Literal["processing", "ready", "failed"]


class ErrorInfo(BaseModel):
    code: str
    message: str


class DatasetRead(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    name: str
    task: Task
    multilabel: bool
    status: DatasetStatus
    created_at: datetime
    finished_at: datetime | None
    num_examples: int
    labels: list[str]
    label_counts: dict[str, int]
    sha256: str | None
    report: dict[str, Any] | None
    error: ErrorInfo | None

    @classmethod
    def of(cls, row: Dataset) -> DatasetRead:
        error = None
        if row.error_code:
            error = ErrorInfo(code=row.error_code, message=row.error_message or "")
        return cls(
            id=row.id,
            name=row.name,
            task=row.task,
            multilabel=row.multilabel,
            status=row.status,
            created_at=row.created_at,
            finished_at=row.finished_at,
            num_examples=row.num_examples,
            labels=list(row.labels),
            label_counts=dict(row.label_counts),
            sha256=row.sha256,
            report=row.report,
            error=error,
        )


DatasetList = ListOf[DatasetRead]
