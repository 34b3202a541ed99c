"""Real PostgreSQL and Redis for integration tests.

Locally a missing server skips its tests; with HONE_TEST_REQUIRE_SERVICES=1 (set by .ci/run)
it fails them, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REQUIRED = os.environ.get("HONE_TEST_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get(
    "HONE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HONE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable: {type(error).__name__}: {error}"
    if REQUIRED:
        pytest.fail(f"{message} (required: HONE_TEST_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for this test session, dropped afterwards."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    name = f"hone_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        unavailable(f"PostgreSQL at {PG_URL}", exc)
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_redis_db() -> Iterator[str]:
    """A Redis logical database (1-15) that is empty for this session; flushed afterwards."""
    import redis

    base = make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
    host, port = base.host or "127.0.0.1", base.port or 6379
    try:
        for index in secrets.SystemRandom().sample(range(1, 16), 15):
            client = redis.Redis(host=host, port=port, db=index, socket_timeout=3)
            if client.dbsize() == 0:
                break
        else:
            raise RuntimeError("no empty Redis database among 1-15")
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}", exc)
    try:
        yield f"redis://{host}:{port}/{index}"
    finally:
        client.flushdb()
        client.close()
