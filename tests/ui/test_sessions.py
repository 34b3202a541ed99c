"""Dashboard sessions live in the registry: signing out, revoking or deleting the key, or the
session's expiry ends it on every API process at once, a replayed copy of its cookie too.
Two real `hone api` processes share one embedded backend, as two hosts share a database."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update

from app.auth.keys import create_key, key_digest
from app.db import make_engine, make_session_factory, transaction
from app.main import create_app
from app.migrate import upgrade
from app.models import ApiKey, DashboardSession, Project
from app.models.base import utcnow
from app.ui import repository
from app.ui.session import UiSession
from tests.support.api_process import ApiProcess
from tests.support.stack import Backend
from tests.ui.conftest import csrf_of, session_client


@pytest.fixture(scope="module")
def apis(backend: Backend) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    first = ApiProcess(backend, backend.data_dir / "sessions-api-1.log")
    second = ApiProcess(backend, backend.data_dir / "sessions-api-2.log")
    try:
        yield first.start(), second.start()
    finally:
        first.stop()
        second.stop()


@pytest.fixture(scope="module")
def engine(backend: Backend) -> Iterator[Engine]:
    engine = make_engine(backend.settings().sqlalchemy_url)
    yield engine
    engine.dispose()


@pytest.fixture
def key(engine: Engine) -> str:
    """A key of its own for each test: the tests revoke and delete theirs."""
    with transaction(make_session_factory(engine)) as session:
        return create_key(session, "sessions")


def _signed_in(url: str, key: str) -> tuple[str, str]:
    """Sign in on `url`: the session cookie and the page's CSRF token."""
    with session_client(url, key) as client:
        cookie = client.cookies.get("hone_session", path="/ui")
        assert cookie
        return cookie, csrf_of(client.get("/ui").text)


def _accepted(url: str, cookie: str) -> bool:
    """Whether the server takes the cookie, for pages and for scripts alike."""
    with httpx.Client(base_url=url, cookies={"hone_session": cookie}) as client:
        page = client.get("/ui/datasets")
        script = client.get("/ui/api/v1/jobs/job_missing")
    if page.status_code == 303:
        assert page.headers["location"].startswith("/ui/signin")
        assert script.status_code == 401, script.text
        assert script.json()["code"] == "not_signed_in"
        return False
    assert page.status_code == 200, page.text
    assert script.status_code == 404, script.text  # signed in: the job is not there
    return True


def _nonce(cookie: str) -> str:
    payload = cookie.partition(".")[0]
    nonce: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["nonce"]
    return nonce


def _rows_of(engine: Engine, key: str) -> list[DashboardSession]:
    with make_session_factory(engine)() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == key_digest(key)))
        mine = select(DashboardSession).where(DashboardSession.api_key_id == key_id)
        return list(session.scalars(mine))


def test_signing_out_on_one_process_ends_the_session_on_every_process(
    apis: tuple[ApiProcess, ApiProcess], engine: Engine, key: str
) -> None:
    first, second = apis
    cookie, token = _signed_in(first.url, key)
    assert _accepted(first.url, cookie) and _accepted(second.url, cookie)
    # The registry holds a digest of the cookie's nonce, never the nonce.
    (row,) = _rows_of(engine, key)
    nonce = _nonce(cookie)
    assert row.id == hashlib.sha256(nonce.encode()).hexdigest() != nonce
    assert timedelta(hours=11) < row.expires_at - row.created_at <= timedelta(hours=12)

    with httpx.Client(base_url=first.url, headers={"Origin": first.url}) as client:
        client.cookies.set("hone_session", cookie, path="/ui")
        resp = client.post("/ui/signout", data={"csrf_token": token})
        assert resp.status_code == 303 and resp.headers["location"] == "/ui/signin"
    assert _rows_of(engine, key) == []
    # The copied cookie is refused by the process that did not handle the sign-out too.
    assert not _accepted(second.url, cookie)
    assert not _accepted(first.url, cookie)


def test_each_sign_in_is_its_own_session(apis: tuple[ApiProcess, ApiProcess], key: str) -> None:
    first, second = apis
    one, token = _signed_in(first.url, key)
    other, _ = _signed_in(second.url, key)
    with httpx.Client(base_url=second.url, headers={"Origin": second.url}) as client:
        client.cookies.set("hone_session", one, path="/ui")
        assert client.post("/ui/signout", data={"csrf_token": token}).status_code == 303
    assert not _accepted(first.url, one)
    assert _accepted(first.url, other) and _accepted(second.url, other)


def test_revoking_the_key_ends_its_sessions_at_once(
    apis: tuple[ApiProcess, ApiProcess], engine: Engine, key: str
) -> None:
    first, second = apis
    cookie, _ = _signed_in(first.url, key)
    assert _accepted(second.url, cookie)
    with transaction(make_session_factory(engine)) as session:
        session.execute(
            update(ApiKey).where(ApiKey.key_hash == key_digest(key)).values(revoked_at=utcnow())
        )
    # At once, on both: no key cache stands between the session and the registry.
    assert not _accepted(first.url, cookie) and not _accepted(second.url, cookie)


def test_deleting_the_key_deletes_its_sessions(
    apis: tuple[ApiProcess, ApiProcess], engine: Engine, key: str
) -> None:
    first, second = apis
    cookie, _ = _signed_in(first.url, key)
    assert _accepted(second.url, cookie) and len(_rows_of(engine, key)) == 1
    with transaction(make_session_factory(engine)) as session:
        row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_digest(key)))
        assert row is not None
        session.delete(row)
    with make_session_factory(engine)() as session:
        left = session.scalar(
            select(func.count())
            .select_from(DashboardSession)
            .where(DashboardSession.id == repository.row_id(_nonce(cookie)))
        )
    assert left == 0  # ON DELETE CASCADE
    assert not _accepted(first.url, cookie) and not _accepted(second.url, cookie)


def test_an_expired_session_is_refused_and_swept_by_a_later_sign_in(
    apis: tuple[ApiProcess, ApiProcess], engine: Engine, key: str
) -> None:
    first, second = apis
    cookie, _ = _signed_in(first.url, key)
    assert _accepted(second.url, cookie)
    # The cookie itself is still well within its 12 hours: only the row says it is over.
    past = utcnow() - timedelta(seconds=1)
    with transaction(make_session_factory(engine)) as session:
        session.execute(
            update(DashboardSession)
            .where(DashboardSession.id == repository.row_id(_nonce(cookie)))
            .values(expires_at=past)
        )
    assert not _accepted(first.url, cookie) and not _accepted(second.url, cookie)
    fresh, _ = _signed_in(second.url, key)
    (row,) = _rows_of(engine, key)  # the expired row went with this sign-in
    assert row.id == repository.row_id(_nonce(fresh))


def test_a_sign_in_sweeps_a_bounded_number_of_expired_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with transaction(sessions) as session:
        create_key(session, "p")
        key_row = session.scalars(select(ApiKey)).one()
        for i in range(repository.SWEEP_ROWS + 20):
            session.add(
                DashboardSession(
                    id=f"{i:064d}",
                    project_id=key_row.project_id,
                    api_key_id=key_row.id,
                    created_at=now - timedelta(hours=13),
                    expires_at=now - timedelta(hours=1, seconds=i),
                )
            )
        project_id, key_id = key_row.project_id, key_row.id
    live = UiSession.new(project_id, key_id, "ab" * 32)
    with transaction(sessions) as session:
        repository.add(session, live.nonce, project_id=project_id, api_key_id=key_id,
                       created_at=now, expires_at=now + timedelta(hours=12))  # fmt: skip
    with sessions() as session:
        left = set(session.scalars(select(DashboardSession.id)))
        assert session.get(Project, project_id) is not None
    engine.dispose()
    # The oldest expired rows went first; the new session is there.
    assert left == {f"{i:064d}" for i in range(20)} | {repository.row_id(live.nonce)}


def test_a_database_outage_during_the_session_check_answers_the_apis_503(
    backend: Backend, key: str
) -> None:
    app = create_app(backend.settings())
    origin = "http://testserver"
    client = TestClient(
        app, raise_server_exceptions=False, headers={"Origin": origin}, follow_redirects=False
    )
    with client:
        token = csrf_of(client.get("/ui/signin").text)
        signin = client.post("/ui/signin", data={"api_key": key, "csrf_token": token})
        assert signin.status_code == 303, signin.text
        assert client.get("/ui/datasets").status_code == 200
        working = app.state.session_factory
        down = make_engine(f"sqlite:///{backend.data_dir / 'no-such-dir' / 'registry.db'}")
        app.state.session_factory = make_session_factory(down)
        try:
            api = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
            script = client.get("/ui/api/v1/jobs/job_missing")
            page = client.get("/ui/datasets")
            signin_page = client.get("/ui/signin")
        finally:
            app.state.session_factory = working
            down.dispose()
        assert api.status_code == 503 and api.json()["code"] == "database_unavailable"
        for answer in (script, page, signin_page):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == api.headers["retry-after"]
        assert script.headers["content-type"].startswith("application/problem+json")
        assert script.json() == api.json()
        assert page.headers["content-type"].startswith("text/html")
        assert api.json()["detail"] in page.text
        assert client.get("/ui/datasets").status_code == 200  # back: still signed in
