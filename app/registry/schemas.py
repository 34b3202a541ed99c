"""API shapes of the registry. Artifact locations are internal and never appear here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, Field

from app.bounds import VersionNumber
from app.models import ModelVersion, RegisteredModel
from app.pagination import ListOf
from app.registry.states import VersionStatus
from ml.training.spec import contract_method

ALIAS_PATTERN = r"^[a-zA-Z][a-zA-Z0-9._-]{0,99}$"
AliasName = Annotated[str, Field(pattern=ALIAS_PATTERN, description="e.g. production")]


class ModelRead(BaseModel):
    name: str
    object: Literal["model"] = "model"
    task: str
    latest_version: int | None = Field(description="The newest ready version, if any.")
    aliases: dict[str, int]
    created_at: datetime

    @classmethod
    def of(cls, row: RegisteredModel, latest: int | None, aliases: dict[str, int]) -> ModelRead:
        return cls(
            name=row.name,
            task=row.task,
            latest_version=latest,
            aliases=aliases,
            created_at=row.created_at,
        )


ModelList = ListOf[ModelRead]


class VersionSummary(BaseModel):
    version: int
    object: Literal["model.version"] = "model.version"
    status: VersionStatus
    backbone: str
    job_id: str | None
    dataset_id: str | None
    accuracy: float | None = Field(description="Classifiers' validation accuracy.")
    macro_f1: float | None = Field(description="Classifiers' validation macro-F1.")
    rmse: float | None = Field(description="Regression models' validation RMSE.")
    r2: float | None = Field(description="Regression models' validation R².")
    method_chosen: Literal["linear_probe", "full", "classical"] | None
    runtime: str
    created_at: datetime

    @classmethod
    def of(cls, row: ModelVersion) -> VersionSummary:
        return cls(
            version=row.version,
            status=cast(VersionStatus, row.status),
            backbone=row.backbone,
            job_id=row.job_id,
            dataset_id=row.dataset_id,
            accuracy=row.metrics.get("accuracy"),
            macro_f1=row.metrics.get("macro_f1"),
            rmse=row.metrics.get("rmse"),
            r2=row.metrics.get("r2"),
            method_chosen=contract_method(row.manifest.get("method")),
            runtime=row.runtime,
            created_at=row.created_at,
        )


class ModelDetail(ModelRead):
    versions: list[VersionSummary]


class VersionRead(BaseModel):
    name: str
    version: int
    object: Literal["model.version"] = "model.version"
    status: VersionStatus
    task: str
    labels: list[str]
    backbone: str
    job_id: str | None
    dataset_id: str | None
    metrics: dict[str, Any]
    manifest: dict[str, Any]
    method_chosen: Literal["linear_probe", "full", "classical"] | None = Field(
        description="The method this version was trained with (what `auto` kept)."
    )
    method_reason: str | None = Field(description="Why that method was kept, in words.")
    runtime: str
    created_at: datetime

    @classmethod
    def of(cls, model: RegisteredModel, row: ModelVersion) -> VersionRead:
        return cls(
            name=model.name,
            version=row.version,
            status=cast(VersionStatus, row.status),
            task=row.task,
            labels=[str(label) for label in row.labels],
            backbone=row.backbone,
            job_id=row.job_id,
            dataset_id=row.dataset_id,
            metrics=row.metrics,
            manifest=row.manifest,
            method_chosen=contract_method(row.manifest.get("method")),
            method_reason=row.manifest.get("method_reason"),
            runtime=row.runtime,
            created_at=row.created_at,
        )


class AliasSet(BaseModel):
    version: VersionNumber


class AliasRead(BaseModel):
    name: str
    object: Literal["model.alias"] = "model.alias"
    alias: str
    version: int


class AliasDeleted(BaseModel):
    name: str
    object: Literal["model.alias"] = "model.alias"
    alias: str
    deleted: bool = True


class VersionDeleted(BaseModel):
    name: str
    object: Literal["model.version"] = "model.version"
    version: int
    deleted: bool = True
    aliases_removed: list[str]
