"""The dashboard's sign-in sessions: a row per signed-in browser, deleted on sign-out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class DashboardSession(Base):
    """The cookie names its session by a random nonce; only a SHA-256 of it is stored here, so
    reading the table gives no cookie (which must also carry the server secret's signature).
    Deleting the API key, or its project, deletes its sessions."""

    __tablename__ = "ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    api_key_id: Mapped[str] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The sweep on sign-in deletes the oldest expired rows first (app/ui/repository.py).
    expires_at: Mapped[datetime] = mapped_column(index=True)
