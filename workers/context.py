"""Per-process resources of a worker (created lazily, so after the prefork fork)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory
from app.storage.places import Storage


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    pid: int


@lru_cache
def _context_for(pid: int) -> WorkerContext:
    settings = get_settings()
    settings.ensure_dirs()
    engine = make_engine(settings.sqlalchemy_url)
    storage = Storage.from_settings(settings)
    return WorkerContext(settings, engine, make_session_factory(engine), storage, pid)


def context() -> WorkerContext:
    # Keyed on the pid: a forked child never reuses its parent's database connections.
    return _context_for(os.getpid())
