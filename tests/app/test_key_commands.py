"""An operator manages API keys from the command line: `hone keys create` prints a key once,
`hone keys list` shows every key's id, project and state (never a secret), and `hone keys
revoke <id>` stops the key from authenticating."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.auth.keys import authenticate
from app.db import make_engine, make_session_factory, transaction


def _hone(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env |= {"HONE_DATA_DIR": str(tmp_path / "data"), "HONE_DATABASE_URL": _url(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=tmp_path,  # no .env of the developer's is read
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


def _project_of(tmp_path: Path, key: str) -> str | None:
    engine = make_engine(_url(tmp_path))
    try:
        with transaction(make_session_factory(engine)) as session:
            project = authenticate(session, key)
            return None if project is None else project.name
    finally:
        engine.dispose()


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    done = _hone(tmp_path, "migrate")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_a_listed_key_is_revoked_by_its_id_and_stops_authenticating(migrated: Path) -> None:
    made = [_hone(migrated, "keys", "create", "--project", p, "--name", n)
            for p, n in (("vision", "ci"), ("text", ""))]  # fmt: skip
    assert all(done.returncode == 0 for done in made), [done.stderr for done in made]
    vision_key, text_key = (done.stdout.strip() for done in made)
    assert _project_of(migrated, vision_key) == "vision"

    listed = _hone(migrated, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and vision_key not in listed.stdout and text_key not in listed.stdout
    vision_line = next(line for line in lines if "  vision  " in line)
    assert "  ci  " in vision_line and vision_line.endswith("active")
    key_id = vision_line.split()[0]
    only_text = _hone(migrated, "keys", "list", "--project", "text").stdout.splitlines()
    assert len(only_text) == 1 and "  text  " in only_text[0]

    revoked = _hone(migrated, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"{key_id} revoked at ")
    assert _project_of(migrated, vision_key) is None
    assert _project_of(migrated, text_key) == "text"  # the other key still works
    after = _hone(migrated, "keys", "list", "--project", "vision").stdout
    assert "revoked" in after and "active" not in after
    # Revoking again changes nothing and says when it was revoked.
    again = _hone(migrated, "keys", "revoke", key_id)
    assert again.returncode == 0 and again.stdout == revoked.stdout


def test_an_unknown_key_id_is_one_line_and_exit_2(migrated: Path) -> None:
    done = _hone(migrated, "keys", "revoke", "key_nonesuch")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "hone: no API key has the id 'key_nonesuch'; `hone keys list` shows the ids."
    ]
