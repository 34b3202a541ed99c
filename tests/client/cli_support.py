"""Running the user commands as a user does: `python -m app.cli ...` in a subprocess, with the
API's URL and key in the environment and a config file of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.client.conftest import Live
from tests.factories.uploads import digits_zip

ROOT = Path(__file__).resolve().parents[2]


def cli_env(url: str | None, key: str | None, config_file: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no server settings, our URL/key/config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env["HONE_CONFIG_FILE"] = str(config_file)
    if url is not None:
        env["HONE_API_URL"] = url
    if key is not None:
        env["HONE_API_KEY"] = key
    env.pop("COLUMNS", None)
    return {**env, **extra}


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def jsonl(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run(env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 300) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=ROOT,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class Hone:
    """`hone ...` against the live API, as the project of `live.key`."""

    def __init__(self, live: Live, home: Path) -> None:
        self.live = live
        self.env = cli_env(live.url, live.key, home / "config.json")

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True) -> Result:
        result = run(self.env, *args, stdin=stdin)
        if ok:
            assert result.code == 0, f"hone {' '.join(args)}: {result.code}\n{result.stderr}"
            assert_plain(result.stdout)
        return result

    def json(self, *args: str, stdin: str | None = None) -> Any:
        return self(*args, "--json", stdin=stdin).json()


def assert_plain(text: str) -> None:
    """No escape sequences or other control characters (newlines and tabs aside)."""
    bad = sorted({c for c in text if (ord(c) < 32 and c not in "\n\t") or ord(c) == 127})
    assert not bad, f"control characters {bad!r} in output:\n{text}"


def digits_folder(folder: Path, per_class: int) -> dict[str, int]:
    """A folder of digit PNGs, one sub-folder per label (what a user has on disk)."""
    archive = folder.with_suffix(".zip")
    counts = digits_zip(archive, per_class=per_class)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
    archive.unlink()
    return counts
