"""API shapes of datasets (separate from the ORM row: internal columns never leak)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.models import Dataset
from app.pagination import ListOf
from ml.tasks import UnknownTask, get_task, task_names

# A registered task's name; the enum is the registry's, so the contract lists every task.
TaskName = Annotated[str, Field(json_schema_extra={"enum": list(task_names())})]
DatasetStatus = Literal["processing", "ready", "failed"]


class ErrorInfo(BaseModel):
    code: str
    message: str


class DatasetRead(BaseModel):
    id: str
    object: Literal["dataset"] = "dataset"
    name: str
    task: TaskName
    multilabel: bool
    status: DatasetStatus
    created_at: datetime
    finished_at: datetime | None
    num_examples: int
    labels: list[str] = Field(description="classification: the label names; [] for regression")
    label_counts: dict[str, int] = Field(description="classification: examples per label")
    targets: list[str] | None = Field(
        description="regression: the target names (the target columns); null for classification"
    )
    sha256: str | None
    report: dict[str, Any] | None
    error: ErrorInfo | None

    @classmethod
    def of(cls, row: Dataset) -> DatasetRead:
        error = None
        if row.error_code:
            error = ErrorInfo(code=row.error_code, message=row.error_message or "")
        labels, targets = _names(row)
        return cls(
            id=row.id,
            name=row.name,
            task=row.task,
            multilabel=row.multilabel,
            status=row.status,
            created_at=row.created_at,
            finished_at=row.finished_at,
            num_examples=row.num_examples,
            labels=labels,
            label_counts=dict(row.label_counts),
            targets=targets,
            sha256=row.sha256,
            report=row.report,
            error=error,
        )


def _names(row: Dataset) -> tuple[list[str], list[str] | None]:
    """(labels, targets): the `labels` column holds a regression task's target names."""
    try:
        regression = get_task(row.task).family == "regression"
    except UnknownTask:
        regression = False
    return ([], list(row.labels)) if regression else (list(row.labels), None)


DatasetList = ListOf[DatasetRead]
