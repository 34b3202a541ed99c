"""The model registry: named models, their numbered versions, and aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id, utcnow
from app.registry.states import REGISTERING


class RegisteredModel(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mdl"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(40))
    # Versions are numbered from this counter, bumped under a row lock.
    last_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"), UniqueConstraint("job_id"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mv"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int]
    # Not servable until mark_ready: a row written without a status is never served.
    status: Mapped[str] = mapped_column(String(20), default=REGISTERING, server_default=REGISTERING)
    task: Mapped[str] = mapped_column(String(40))
    labels: Mapped[list[Any]] = mapped_column(default=list)
    backbone: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(40), default=None)
    dataset_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    runtime: Mapped[str] = mapped_column(String(40), default="torch")
    artifact_uri: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int]
