"""Every command README.md and docker-compose.yml show, run as written, read from the files.

- docker-compose.yml's header: its key recipe (`echo "HONE_BOOTSTRAP_API_KEY=..." > .env`) runs
  in an empty folder, then `hone migrate` and `hone api` run there (settings read `.env` from the
  working directory), and the key must authenticate. `docker compose up` itself is not run: no
  Docker engine or image registry is reachable from the tests; tests/test_deploy.py checks the
  compose file structurally and its commands against the CLI.
- README's top block: `make test` is what CI (.ci/run) runs, so it is exercised there. `make run`
  is `install` + `hone up` (checked against the Makefile below), and the walk-through test starts
  `hone up`; make itself is not run inside the tests.
- README's key block and walk-through: one `bash` with `set -euo pipefail` runs every block in
  order, against `hone up` started in a fresh folder (a temporary HONE_DATA_DIR, a free
  HONE_PORT) that holds the example files the README names. The test changes two things only:
  the `127.0.0.1:8000` address becomes the test server's, and the placeholder line
  `export HONE_API_KEY=hone_...` gets the key `hone up` printed.
- README's production block: each `hone ...` line runs as written against a fresh PostgreSQL
  database and Redis db. Its `export` lines are not run: the test sets those three variables to
  the test services and a temporary folder instead (and HONE_PORT to a free port).
The Development block (`make lint typecheck`, `make test ...`, `make bench`) is CI's and the
benchmarks' business, not run here.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app.config import Settings
from tests.factories.uploads import digits_zip, tweets_csv
from tests.support.api_process import free_port
from tests.support.docs import (
    ROOT,
    command_lines,
    compose_header_commands,
    readme_blocks,
)
from tests.support.services import fresh_postgres_database, fresh_redis_db
from tests.support.shell import ShellProcess, run_script, user_env
from tests.support.stack import wait_until

pytestmark = pytest.mark.timeout(300)

KEY_PLACEHOLDER = re.compile(r"^export HONE_API_KEY=hone_\.\.\..*$", re.MULTILINE)
README_ADDRESS = "127.0.0.1:8000"
SERVERS = ("hone api", "hone worker")


def wait_healthy(proc: ShellProcess, url: str, timeout: float = 90) -> None:
    def healthy() -> bool:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"`{proc.command}` exited ({proc.proc.returncode}):\n{proc.log()}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=timeout, what=f"`{proc.command}` healthy on {url}")


def datasets_status(url: str, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{url}/v1/datasets", headers=headers, timeout=10).status_code


def json_values(output: str) -> list[Any]:
    """Every JSON object in `output`: curl's answers run together without newlines, and SSE
    `data:` lines carry one each."""
    decoder, found, at = json.JSONDecoder(), [], output.find("{")
    while at >= 0:
        try:
            value, end = decoder.raw_decode(output, at)
        except json.JSONDecodeError:
            end = at + 1
        else:
            found.append(value)
        at = output.find("{", end)
    return found


def test_compose_key_recipe_writes_a_key_the_api_accepts(tmp_path: Path) -> None:
    commands = compose_header_commands()
    recipes = [c for c in commands if c.startswith('echo "HONE_BOOTSTRAP_API_KEY=')]
    assert len(recipes) == 1, commands
    # The rest is `docker compose ...`, which cannot run here (see the module docstring).
    assert all(c.startswith("docker compose ") for c in commands if c not in recipes), commands
    folder = tmp_path / "compose"
    folder.mkdir()
    made = run_script(recipes[0], folder, user_env(), timeout=30)
    assert made.returncode == 0, made.stderr
    (line,) = (folder / ".env").read_text().splitlines()
    name, _, key = line.partition("=")
    assert name == "HONE_BOOTSTRAP_API_KEY" and key

    port = free_port()
    env = user_env(HONE_DATA_DIR=str(tmp_path / "data"), HONE_HOST="127.0.0.1", HONE_PORT=str(port))
    migrated = run_script("hone migrate", folder, env, timeout=60)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    api = ShellProcess("hone api", folder, env, tmp_path / "api.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(api, url)
        assert datasets_status(url, key) == 200, api.log()
        assert datasets_status(url, secrets.token_hex(32)) == 401
    finally:
        status = api.stop()
    assert status != -9, f"`hone api` ignored SIGTERM:\n{api.log()}"


def test_top_block_is_make_run_and_make_test() -> None:
    top = next(b for b in readme_blocks("") if "make run" in b)
    assert [c.split("#")[0].strip() for c in command_lines(top)] == ["make run", "make test"]
    # `make run` is what the walk-through test starts: `hone up`, after installing.
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run: install\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe is not None and recipe[1].endswith("/hone up"), "Makefile run target changed"


def _products_zip(path: Path) -> set[str]:
    return set(digits_zip(path, per_class=6))


def _tickets_csv(path: Path) -> set[str]:
    return set(tweets_csv(path, 60, text_column="body", label_column="topic"))


def _part_jpg(path: Path) -> set[str]:
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[0] * 255 / 16).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.NEAREST)
    image.convert("RGB").save(path, format="JPEG")
    return set()


# The example files the walk-through names, each written as the README describes it.
EXAMPLE_FILES: dict[str, Callable[[Path], set[str]]] = {
    "products.zip": _products_zip,  # one folder per label
    "tickets.csv": _tickets_csv,  # columns body, topic
    "part.jpg": _part_jpg,
}


def walkthrough_script(port: int, key: str) -> str:
    (key_block,) = [b for b in readme_blocks("") if "HONE_API_KEY=" in b]
    script, replaced = KEY_PLACEHOLDER.subn(f"export HONE_API_KEY={key}", key_block)
    assert replaced == 1, f"no `export HONE_API_KEY=hone_...` line in:\n{key_block}"
    walkthrough = "\n".join(readme_blocks("Walk-through"))
    assert README_ADDRESS in walkthrough
    script += "\n" + walkthrough.replace(README_ADDRESS, f"127.0.0.1:{port}")
    # Ids come from variables: an elided placeholder (`ds_…`) would not run.
    assert "…" not in script, "a walk-through command still has a `…` placeholder"
    return "set -euo pipefail\n" + script


@pytest.fixture
def hone_up(tmp_path: Path) -> Iterator[tuple[ShellProcess, str, str]]:
    """`hone up` (what `make run` runs after installing) in a fresh folder: (process, url, key)."""
    port = free_port()
    env = user_env(HONE_DATA_DIR=str(tmp_path / "data"), HONE_HOST="127.0.0.1", HONE_PORT=str(port))
    proc = ShellProcess("hone up", tmp_path, env, tmp_path / "up.log")
    url = f"http://127.0.0.1:{port}"
    try:
        key = proc.wait_for_log(r"export HONE_API_KEY=(\S+)")[1]
        wait_healthy(proc, url)
    except BaseException:
        proc.stop()
        raise
    yield proc, url, key
    assert proc.stop() != -9, f"`hone up` ignored SIGTERM:\n{proc.log()}"


@pytest.mark.slow  # trains the two offline pretrained backbones (a linear probe: seconds)
def test_walkthrough_runs_as_written(
    tmp_path: Path, hone_up: tuple[ShellProcess, str, str]
) -> None:
    proc, url, key = hone_up
    assert shutil.which("curl") and shutil.which("python3"), "the walk-through needs curl, python3"
    script = walkthrough_script(int(url.rsplit(":", 1)[1]), key)
    named = set(re.findall(r"=@([\w.-]+)", script))
    assert named == set(EXAMPLE_FILES), f"the test writes {set(EXAMPLE_FILES)}; README: {named}"
    labels = set().union(*(write(tmp_path / name) for name, write in EXAMPLE_FILES.items()))

    done = run_script(script, tmp_path, user_env(), timeout=180)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{proc.log()[-5000:]}"
    values = [v for v in json_values(done.stdout) if isinstance(v, dict)]

    predicted = [v for v in values if "predictions" in v]
    models = re.findall(r"/v1/models/([\w.-]+)/predict", script)
    assert [p["model"]["name"] for p in predicted] == models, done.stdout
    for answer in predicted:
        assert answer["predictions"] and all(p["label"] in labels for p in answer["predictions"])
    jobs: dict[str, str] = {
        v["id"]: v["status"] for v in values if v.get("object") == "fine_tuning.job"
    }
    assert jobs and set(jobs.values()) == {"succeeded"}, jobs
    # The one problem the walk-through shows: cancelling the job that has finished.
    problems = [v for v in values if isinstance(v.get("status"), int) and v["status"] >= 400]
    assert [p.get("code") for p in problems] == ["job_finished"], problems
    # "the models trained on it stay": the text dataset is gone, its model still answers.
    headers = {"Authorization": f"Bearer {key}"}
    after = httpx.post(
        f"{url}/v1/models/tickets/predict", json={"inputs": ["hello"]}, headers=headers
    )
    assert after.status_code == 200, after.text


def test_production_block_runs_against_postgres_and_redis(tmp_path: Path) -> None:
    (block,) = readme_blocks("Production")
    lines = command_lines(block)
    exports = dict(
        re.fullmatch(r"export (\w+)=(\S+)(?:\s+#.*)?", line).groups()  # type: ignore[union-attr]
        for line in lines
        if line.startswith("export ")
    )
    assert set(exports) == {"HONE_DATABASE_URL", "HONE_BROKER_URL", "HONE_DATA_DIR"}, exports
    # The README's example values are settings Hone accepts; the test's replace them.
    Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=exports["HONE_DATABASE_URL"],
        broker_url=exports["HONE_BROKER_URL"],
        data_dir=exports["HONE_DATA_DIR"],
    )
    commands = [line for line in lines if not line.startswith("export ")]
    assert all(c.startswith("hone ") for c in commands), commands

    with fresh_postgres_database() as db_url, fresh_redis_db() as redis_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = user_env(
            HONE_DATABASE_URL=db_url,
            HONE_BROKER_URL=redis_url,
            HONE_DATA_DIR=str(tmp_path / "srv-hone"),
            HONE_HOST="127.0.0.1",
            HONE_PORT=str(port),
        )
        servers: list[ShellProcess] = []
        outputs: dict[str, str] = {}
        try:
            for i, command in enumerate(commands):
                if command.startswith(SERVERS):
                    log = tmp_path / f"{i}-{command.split('#')[0].strip().replace(' ', '_')}.log"
                    servers.append(ShellProcess(command, tmp_path, env, log))
                    continue
                ran = run_script(command, tmp_path, env, timeout=60)
                assert ran.returncode == 0, f"`{command}`: {ran.stdout}{ran.stderr}"
                outputs[command.split()[1]] = ran.stdout
            key = outputs["keys"].strip().splitlines()[-1]
            for server in servers:
                # Four processes importing torch at once: slow on a small CI machine.
                if server.command.startswith("hone api"):
                    wait_healthy(server, url, timeout=150)
                else:
                    server.wait_for_log(r" ready\.", timeout=150)
            assert datasets_status(url, key) == 200
            assert datasets_status(url, secrets.token_hex(32)) == 401
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            # An upload is processed by the `data` worker (201 means it finished in time).
            tweets_csv(tmp_path / "t.csv", 30)
            with (tmp_path / "t.csv").open("rb") as stream:
                answer = httpx.post(
                    f"{url}/v1/datasets",
                    headers={"Authorization": f"Bearer {key}"},
                    files={"file": ("t.csv", stream, "text/csv")},
                    data={"task": "text_classification"},
                    timeout=60,
                )
            assert answer.status_code == 201, answer.text
        finally:
            stopped = [(s, s.stop()) for s in servers]
        for server, status in stopped:
            assert status != -9, f"`{server.command}` ignored SIGTERM:\n{server.log()}"
