"""API keys are stored hashed, only the exact key authenticates, and a revoked key stops
working within the API's `auth_cache_seconds`."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.auth.keys import authenticate, create_key, key_digest, register_key
from app.config import Settings
from app.db import make_engine, make_session_factory, transaction
from app.main import create_app
from app.migrate import upgrade
from app.models import ApiKey
from app.models.base import utcnow
from tests.support.stack import wait_until


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


def test_an_operator_secret_of_any_form_is_a_bootstrap_key(sessions) -> None:  # type: ignore[no-untyped-def]
    # What docker-compose.yml tells operators to run: `openssl rand -hex 32` (no hone_ prefix).
    hex_secret = secrets.token_hex(32)
    base64_secret = secrets.token_urlsafe(32) + "+/="
    for secret in (hex_secret, base64_secret, "hone_but-not-generated-by-hone-0123456789"):
        with transaction(sessions) as s:
            register_key(s, secret, "default")
        with transaction(sessions) as s:
            project = authenticate(s, secret)
            assert project is not None and project.name == "default", secret
            assert authenticate(s, secret[:-1] + ("0" if secret[-1] != "0" else "1")) is None
    # Generated keys keep their form, and an operator secret never shadows one.
    with transaction(sessions) as s:
        generated = create_key(s, "team")
    assert generated.startswith("hone_")
    with transaction(sessions) as s:
        project = authenticate(s, generated)
        assert project is not None and project.name == "team"
    for weak in ("x" * 31, "a b" * 20, "é" * 40):
        with pytest.raises(ValueError, match="openssl rand -hex 32"), transaction(sessions) as s:
            register_key(s, weak, "default")


def _revoke(sessions, key: str) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as s:
        row = s.scalar(select(ApiKey).where(ApiKey.key_hash == key_digest(key)))
        assert row is not None
        row.revoked_at = utcnow()


@pytest.mark.parametrize("remember", [0.0, 0.3])
def test_a_revoked_key_is_refused_within_auth_cache_seconds(
    tmp_path: Path,
    sessions,
    remember: float,  # type: ignore[no-untyped-def]
) -> None:
    url = str(sessions.kw["bind"].url)
    settings = Settings(data_dir=tmp_path, database_url=url, auth_cache_seconds=remember)
    with transaction(sessions) as s:
        key = create_key(s, "alpha")
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/models", headers=headers).status_code == 200
        _revoke(sessions, key)
        started = time.monotonic()
        wait_until(
            lambda: client.get("/v1/models", headers=headers).status_code == 401,
            timeout=5,
            interval=0.05,
            what="the revoked key to be refused",
        )
        assert time.monotonic() - started <= remember + 1.0
