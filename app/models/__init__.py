"""ORM tables. Importing this package registers every table on Base.metadata."""

from app.models.base import Base
from app.models.dataset import Dataset
from app.models.idempotency import IdempotencyKey
from app.models.job import Job, JobEvent
from app.models.project import ApiKey, Project
from app.models.registry import ModelAlias, ModelVersion, RegisteredModel
from app.models.ui_session import DashboardSession

__all__ = [
    "ApiKey",
    "Base",
    "DashboardSession",
    "Dataset",
    "IdempotencyKey",
    "Job",
    "JobEvent",
    "ModelAlias",
    "ModelVersion",
    "Project",
    "RegisteredModel",
]
