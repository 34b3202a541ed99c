"""A bad setting is an answer, not a traceback: `hone up` and `hone api` print one line that
names the variable, says what is wrong and how to fix it, and exit with status 2 before
starting a worker or binding a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.api_process import free_port

CASES = [
    ("HONE_PORT", "eighty", "valid integer"),
    ("HONE_PORT", "70000", "65535"),
    ("HONE_MAX_UPLOAD_BYTES", "-5", "greater than 0"),
    ("HONE_LOG_LEVEL", "LOUD", "INFO"),
    ("HONE_LOG_JSON", "maybe", "boolean"),
    ("HONE_BOOTSTRAP_API_KEY", "short-secret", "openssl rand -hex 32"),
    ("HONE_DATABASE_URL", "mysql://db/hone", "postgresql+psycopg://"),
    ("HONE_BROKER_URL", "localhost:6379", "redis://"),
    ("HONE_SERVE_DEVICE", "gpu", "pattern"),
    ("HONE_BACKBONES_FILES", "not json", "JSON"),
]


def _run(
    command: str, tmp_path: Path, variable: str, value: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env.update({"HONE_DATA_DIR": str(tmp_path / "data"), "HONE_PORT": str(free_port())})
    env[variable] = value
    return subprocess.run(
        [sys.executable, "-m", "app.cli", command],
        cwd=tmp_path,  # no .env of the developer's is read
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["up", "api"])
@pytest.mark.parametrize(("variable", "value", "fix"), CASES)
def test_a_bad_setting_is_one_line_and_exit_2(
    command: str, variable: str, value: str, fix: str, tmp_path: Path
) -> None:
    result = _run(command, tmp_path, variable, value)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hone: {variable}"), lines[0]
    assert fix in lines[0] and "Traceback" not in result.stderr
    if variable == "HONE_BOOTSTRAP_API_KEY":
        assert value not in lines[0]  # a secret is never echoed
    # Nothing was started: not even the data directory exists (no database, broker, worker).
    assert not (tmp_path / "data").exists()
    assert result.stdout == ""


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env["HONE_DATA_DIR"] = str(blocker / "hone")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "api"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hone: HONE_DATA_DIR=") and "writable" in line
