"""Uploaded datasets; the processed files are in the store under datasets/<sha256>/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id, utcnow


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_project_id_id", "project_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ds"))
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(40))
    multilabel: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="processing", index=True)
    # What the worker needs to process the upload: file name, kind, column mapping.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    num_examples: Mapped[int] = mapped_column(default=0)
    # Label names; for a regression task, its target names (the API shows them as `targets`).
    labels: Mapped[list[Any]] = mapped_column(default=list)
    label_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(60), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    # Delivery, as for jobs (app/datasets/lifecycle.py, workers/reaper.py): attempts so far,
    # the live attempt's lease, and when the processing message was last sent (NULL: not sent,
    # e.g. the broker was down; a data worker's reaper sends it).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    enqueued_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
