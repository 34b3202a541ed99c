"""API keys are stored hashed and only the exact key authenticates."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.auth.keys import authenticate, create_key, register_key
from app.db import make_engine, make_session_factory, transaction
from app.migrate import upgrade
from app.models import ApiKey


@pytest.fixture
def sessions(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def test_keys_are_hashed_and_scoped_to_their_project(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        key = create_key(s, "alpha")
        other = create_key(s, "beta")
    with transaction(sessions) as s:
        stored = s.scalars(select(ApiKey.key_hash)).all()
        assert key not in stored and all(len(h) == 64 for h in stored)
        alpha = authenticate(s, key)
        beta = authenticate(s, other)
        assert alpha is not None and alpha.name == "alpha"
        assert beta is not None and beta.name == "beta"
        assert authenticate(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert authenticate(s, "hone_short") is None


def test_bootstrap_key_is_valid_for_the_default_project(sessions) -> None:  # type: ignore[no-untyped-def]
    key = "hone_" + "b" * 40
    with transaction(sessions) as s:
        register_key(s, key, "default")
        register_key(s, key, "default")  # idempotent across restarts
    with transaction(sessions) as s:
        project = authenticate(s, key)
        assert project is not None and project.name == "default"
    with pytest.raises(ValueError, match="hone keys create"), transaction(sessions) as s:
        register_key(s, "too-short", "default")
