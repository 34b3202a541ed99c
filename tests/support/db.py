"""A database session on a test stack's own database, for tests that look behind the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.db import make_engine, make_session_factory, transaction

if TYPE_CHECKING:
    from tests.conftest import Stack


@contextmanager
def stack_session(stack: Stack) -> Iterator[Session]:
    """One transaction on the stack's database, committed when the block ends cleanly."""
    engine = make_engine(stack.backend.settings().sqlalchemy_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            yield session
    finally:
        engine.dispose()
