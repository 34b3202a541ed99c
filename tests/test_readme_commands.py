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
- README's production blocks (the settings every host exports, host A's API commands, host B's
  worker commands): each `hone ...` line runs as written, host A's and host B's each in a
  folder of their own with an empty data dir and cache dir, against a fresh PostgreSQL
  database, a Redis db and a bucket on a moto S3 server, so the two "hosts" share nothing on
  disk. The `export` lines are not run: their example values are checked as Hone settings, and
  the test sets each variable to the test services instead (the storage URL keeps the README's
  prefix; HONE_HOST stays loopback, HONE_PORT a free port).
The Development block (`make lint typecheck`, `make test ...`, `make bench`) is CI's and the
benchmarks' business, not run here.
"""

from __future__ import annotations

import csv
import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from app.config import Settings
from tests.client.cli_support import digits_folder
from tests.factories.uploads import digits_zip, tweets, tweets_csv
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


def _listings_csv(path: Path) -> set[str]:
    """Texts with a numeric `price`: tweets, priced by their length in words."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "price"])
        writer.writerows((text, 2.5 * len(text.split())) for text, _ in tweets(60))
    return set()


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
    "listings.csv": _listings_csv,  # columns text, price (a number)
    "part.jpg": _part_jpg,
}


def walkthrough_script(port: int, key: str, section: str = "Walk-through") -> str:
    (key_block,) = [b for b in readme_blocks("") if "HONE_API_KEY=" in b]
    script, replaced = KEY_PLACEHOLDER.subn(f"export HONE_API_KEY={key}", key_block)
    assert replaced == 1, f"no `export HONE_API_KEY=hone_...` line in:\n{key_block}"
    walkthrough = "\n".join(readme_blocks(section))
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
        assert answer["predictions"]
        for p in answer["predictions"]:
            if "value" in p:  # the regression model: a value inside its interval
                assert p["interval"][0] <= p["value"] <= p["interval"][1] and p["coverage"] == 0.8
            else:
                assert p["label"] in labels
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


@pytest.mark.slow  # uploads a folder and trains the offline EfficientNet-Lite0 (`auto`)
def test_quick_start_with_the_hone_commands_runs_as_written(
    tmp_path: Path, hone_up: tuple[ShellProcess, str, str]
) -> None:
    """The client path: `hone login`, a folder upload, `train --watch`, the model's metrics,
    a prediction and a download, as written, into a pipe (no colours, no progress)."""
    _, url, key = hone_up
    script = walkthrough_script(int(url.rsplit(":", 1)[1]), key, "Quick start")
    labels = set(digits_folder(tmp_path / "photos", per_class=6))
    _part_jpg(tmp_path / "part.jpg")
    env = user_env(XDG_CONFIG_HOME=str(tmp_path / "config"))

    done = run_script(script, tmp_path, env, timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout
    assert "\x1b" not in out, "colours or cursor moves in a pipe"
    saved = tmp_path / "config" / "hone" / "config.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert re.search(r"Succeeded: job job_\w+ -> model parts version 1", out), out
    assert "Confusion matrix" in out and "Per label" in out
    predicted = re.search(r"part\.jpg\s+->\s+(\S+)\s+\d\.\d{3}", out)
    assert predicted and predicted[1] in labels, out
    sums = (tmp_path / "parts-model" / "SHA256SUMS").read_text().splitlines()
    assert any(line.endswith("  config.json") for line in sums), sums


# What the README's shared block sets on every host; the test replaces each value with its own.
SHARED_SETTINGS = {
    "HONE_DATABASE_URL",
    "HONE_BROKER_URL",
    "HONE_STORAGE_URL",
    "HONE_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "HONE_DATA_DIR",
}
EXPORT = re.compile(r"export (\w+)=(\S+)(?:\s+#.*)?")


def exports_of(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        if line.startswith("export "):
            match = EXPORT.fullmatch(line)
            assert match is not None, f"not `export NAME=value  # comment`: {line}"
            found[match[1]] = match[2]
    return found


def production_blocks() -> tuple[dict[str, str], list[str], list[str], dict[str, str]]:
    """The Production section's blocks: the settings every host exports, host A's commands,
    host B's commands, and host A's own exports."""
    shared, host_a, host_b = (command_lines(b) for b in readme_blocks("Production"))
    assert all(line.startswith("export ") for line in shared), shared
    exports = exports_of(shared)
    assert set(exports) == SHARED_SETTINGS, exports
    api_exports = exports_of(host_a)
    assert set(api_exports) <= {"HONE_HOST", "HONE_PORT"}, api_exports
    assert not exports_of(host_b), host_b
    commands_a = [c for c in host_a if not c.startswith("export ")]
    assert all(c.startswith("hone ") for c in commands_a + host_b), (commands_a, host_b)
    assert [c.split()[1] for c in commands_a] == ["migrate", "keys", "api"], commands_a
    assert all(c.split()[1] == "worker" for c in host_b), host_b
    return exports, commands_a, host_b, api_exports


def test_production_blocks_are_settings_hone_accepts() -> None:
    exports, commands_a, commands_b, api_exports = production_blocks()
    # The README's example values are settings Hone accepts; the test's replace them.
    Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=exports["HONE_DATABASE_URL"],
        broker_url=exports["HONE_BROKER_URL"],
        storage_url=exports["HONE_STORAGE_URL"],
        s3_endpoint_url=exports["HONE_S3_ENDPOINT_URL"],
        data_dir=exports["HONE_DATA_DIR"],
        host=api_exports.get("HONE_HOST", "127.0.0.1"),
    )
    assert exports["HONE_STORAGE_URL"].startswith("s3://")
    assert api_exports.get("HONE_HOST") == "0.0.0.0", "the API must listen beyond loopback"
    assert "--workers 2" in commands_a[-1]
    queues = {q for c in commands_b for q in c.split("--queues ")[1].split()[0].split(",")}
    assert queues == {"data", "train"}, commands_b


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow  # trains the offline text backbone (a linear probe: seconds)
@pytest.mark.timeout(600)
def test_production_blocks_run_on_two_hosts_sharing_only_the_services(tmp_path: Path) -> None:
    """Host A (API) and host B (workers) each run their block in a folder of their own with an
    empty data dir and cache dir; they share PostgreSQL, Redis and a moto S3 server, nothing
    on disk. A text upload is processed on B, a model trained on B is served by A."""
    from tests.app.jobs.flows import auth, create_job, wait_for_job
    from tests.support.s3_server import running_s3_server

    exports, commands_a, commands_b, _ = production_blocks()
    # The README's prefix is kept; the bucket is the test server's.
    prefix = urlsplit(exports["HONE_STORAGE_URL"]).path.strip("/")
    with (
        fresh_postgres_database() as db_url,
        fresh_redis_db() as redis_url,
        running_s3_server(tmp_path / "s3.log") as s3,
    ):
        storage_url = f"{s3.create_bucket()}/{prefix}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        hosts: dict[str, tuple[Path, dict[str, str]]] = {}
        for name in ("host-a", "host-b"):
            folder = tmp_path / name
            folder.mkdir()
            # Nothing AWS-shaped from the developer's shell: only the test server's settings.
            base = {k: v for k, v in user_env().items() if not k.startswith("AWS_")}
            env = {
                **base,
                **s3.env(),
                "HONE_DATABASE_URL": db_url,
                "HONE_BROKER_URL": redis_url,
                "HONE_STORAGE_URL": storage_url,
                "HONE_DATA_DIR": str(folder / "data"),
                "HONE_CACHE_DIR": str(folder / "cache"),
            }
            hosts[name] = folder, env
        hosts["host-a"][1].update(HONE_HOST="127.0.0.1", HONE_PORT=str(port))
        assert set(hosts["host-a"][1]) >= SHARED_SETTINGS | {"HONE_CACHE_DIR"}

        servers: list[ShellProcess] = []
        outputs: dict[str, str] = {}
        try:
            for host, commands in (("host-a", commands_a), ("host-b", commands_b)):
                folder, env = hosts[host]
                for i, command in enumerate(commands):
                    if command.startswith(SERVERS):
                        log = folder / f"{i}-{command.split('#')[0].split()[1]}.log"
                        servers.append(ShellProcess(command, folder, env, log))
                        continue
                    ran = run_script(command, folder, env, timeout=60)
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
            ready = httpx.get(f"{url}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text

            client = httpx.Client(base_url=url, timeout=60)
            # An upload is processed by host B's `data` worker (201: it finished in time).
            tweets_csv(tmp_path / "t.csv", 40)
            with (tmp_path / "t.csv").open("rb") as stream:
                answer = client.post(
                    "/v1/datasets",
                    headers=auth(key),
                    files={"file": ("t.csv", stream, "text/csv")},
                    data={"task": "text_classification"},
                )
            assert answer.status_code == 201, answer.text
            # Trained by host B's `train` worker, served by host A: through the store only.
            job = create_job(
                client, key, answer.json()["id"], "tickets",
                backbone="minilm_l6", method="linear_probe",
            )  # fmt: skip
            done = wait_for_job(client, key, job["id"], timeout=240)
            assert done["status"] == "succeeded", done
            predicted = client.post(
                "/v1/models/tickets/predict", headers=auth(key), json={"inputs": ["hello"]}
            )
            assert predicted.status_code == 200, predicted.text
            assert predicted.json()["model"] == {"name": "tickets", "version": 1}
        finally:
            stopped = [(s, s.stop()) for s in servers]
        for server, status in stopped:
            assert status != -9, f"`{server.command}` ignored SIGTERM:\n{server.log()}"

        # What lasts is in the store; each host's data dir holds nothing but (empty) folders,
        # and its files are all in its cache, which the next start may not have.
        keys = stored_keys(s3, storage_url)
        for kind in ("datasets/", "models/"):
            assert any(k.startswith(f"{prefix}/{kind}") for k in keys), (kind, keys)
        assert not [k for k in keys if k.startswith(f"{prefix}/uploads/")], keys
        for name, (folder, _) in hosts.items():
            assert _files_under(folder / "data") == [], f"{name} kept files outside its cache"
        assert _files_under(hosts["host-b"][0] / "cache"), "host B fetched nothing into its cache"


def stored_keys(s3: Any, storage_url: str) -> list[str]:
    import botocore.session

    env = s3.env()
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = urlsplit(storage_url).netloc
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
