"""Schemathesis against the live OpenAPI of a real `hone api` process with a real worker, on
both databases: every check, every phase (examples, coverage, fuzzing, and the stateful phase
that follows the schema's OpenAPI links), and no answer of 500 or more.

A seeded dataset, finished job and trained model (with an alias) let generated requests reach
past "not found": schemathesis draws their ids from dictionaries for half of the requests that
read or use them. Deletions hit what the run itself created, and in the stateful phase what
links lead to. tests/support/schemathesis_hooks.py keeps generated predictions to one version
selector. Time: about a minute per backend on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.auth.keys import create_key
from app.db import make_engine, make_session_factory, transaction
from ml.backbones.testing import TINY_TEXT_ID
from tests.app.jobs.flows import QUICK_TEXT_JOB, create_job, tweets_dataset, wait_for_job
from tests.support.api_process import ApiProcess
from tests.support.stack import ROOT, Backend, WorkerProcess, wait_until

HOOKS = ROOT / "tests" / "support" / "schemathesis_hooks.py"
MODEL = "st-seed"
MAX_EXAMPLES = 25
RUN_TIMEOUT = 420
# Requests that are valid in shape but refused for their content, as the contract says: a
# dataset file that is not a dataset (400/413/415/422), a job naming an unknown backbone or
# conflicting options (422), a prediction's inputs of the wrong kind or empty (422).
CONTENT_CHECKED = {
    "POST /v1/datasets": ["2xx", "400", "401", "404", "409", "413", "415", "422"],
    "POST /v1/jobs": ["2xx", "401", "404", "409", "422"],
    "POST /v1/models/{name}/predict": ["2xx", "401", "404", "409", "422", "429", "503"],
}


@dataclass
class Seeded:
    api: ApiProcess
    key: str
    dataset_id: str
    job_id: str


@pytest.fixture(scope="module")
def seeded(
    backend: Backend, worker: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Seeded]:
    engine = make_engine(backend.settings().sqlalchemy_url)
    with transaction(make_session_factory(engine)) as session:
        key = create_key(session, "schemathesis")
    engine.dispose()
    folder = tmp_path_factory.mktemp("schemathesis")
    # Uploads answer 202 at once rather than wait for the (busy) worker.
    api = ApiProcess(backend, folder / "api.log", HONE_UPLOAD_WAIT_SECONDS="0.5").start()
    client = httpx.Client(base_url=api.url, timeout=60)
    try:
        dataset_id = tweets_dataset(client, key, folder)
        job = create_job(client, key, dataset_id, MODEL, **QUICK_TEXT_JOB)
        assert wait_for_job(client, key, job["id"])["status"] == "succeeded"
        alias = client.put(
            f"/v1/models/{MODEL}/aliases/production",
            headers={"Authorization": f"Bearer {key}"},
            json={"version": 1},
        )
        assert alias.status_code == 200, alias.text
        yield Seeded(api, key, dataset_id, job["id"])
    finally:
        _cancel_unfinished(client, key)
        client.close()
        api.stop()


def _cancel_unfinished(client: httpx.Client, key: str) -> None:
    """Jobs the run created must not keep the session's shared worker busy."""
    headers = {"Authorization": f"Bearer {key}"}

    def unfinished() -> list[str]:
        ids, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
            page = client.get("/v1/jobs", headers=headers, params=params).json()
            ids += [j["id"] for j in page["data"] if j["status"] in ("queued", "running")]
            if not page["has_more"]:
                return ids
            after = page["data"][-1]["id"]

    for job_id in unfinished():
        client.post(f"/v1/jobs/{job_id}/cancel", headers=headers)

    def settled() -> bool:
        page = client.get("/v1/jobs", headers=headers, params={"status": "cancelling"}).json()
        return not page["data"]

    wait_until(settled, timeout=120, interval=0.5, what="jobs of the run stopped")


def _config(seeded: Seeded, path: Path) -> Path:
    """A schemathesis.toml: all checks, seeded ids for the operations that read or use them."""
    dictionaries = {
        "datasets": [seeded.dataset_id],
        "jobs": [seeded.job_id],
        "models": [MODEL],
        "backbones": [TINY_TEXT_ID],
        "methods": ["linear_probe"],
    }
    lines = [
        f'hooks = "{HOOKS}"',
        "seed = 42",
        "workers = 1",
        "request-timeout = 60",
        "[headers]",
        f'Authorization = "Bearer {seeded.key}"',
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        # HTTP servers ignore query parameters and headers they do not know, by design.
        "allow-extra-parameters = false",
        "[checks]",
        "enabled = true",
    ]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    uses = {
        "path.dataset_id": "datasets",
        "path.job_id": "jobs",
        "path.name": "models",
        "body.dataset_id": "datasets",
        "body.backbone": "backbones",
        "body.method": "methods",
    }
    lines += [
        "[[operations]]",
        'include-method = ["GET", "POST", "PUT"]',
        "[operations.parameters]",
        *(
            f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}'
            for key, name in uses.items()
        ),
    ]
    # Deletions aim at what the run creates: outside the stateful phase (which follows links
    # from a create), they do not reuse ids harvested from earlier answers, so the seeded
    # dataset and model stay for the requests that need them.
    lines += [
        "[[operations]]",
        'include-method = "DELETE"',
        "phases.coverage.extra-data-sources.responses = false",
        "phases.fuzzing.extra-data-sources.responses = false",
    ]
    for operation, statuses in CONTENT_CHECKED.items():
        lines += [
            "[[operations]]",
            f'include-name = "{operation}"',
            f"checks.positive_data_acceptance.expected-statuses = {json.dumps(statuses)}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Report:
    interactions: int
    server_errors: list[str]  # "status METHOD uri"
    failures: list[str]  # "operation: check"
    errors: list[str]  # scenarios that could not run (a timeout, a connection reset, ...)


def _read_report(folder: Path) -> Report:
    (path,) = folder.glob("*.ndjson")
    report = Report(0, [], [], [])
    for line in path.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished.get("recorder") or {}
        label = recorder.get("label", "?")
        if finished["status"] == "error":
            report.errors.append(f"{label} ({finished['phase']})")
        for interaction in (recorder.get("interactions") or {}).values():
            report.interactions += 1
            response, request = interaction.get("response"), interaction["request"]
            if response is None:
                report.errors.append(f"no response: {request['method']} {request['uri']}")
            elif response["status_code"] >= 500:
                report.server_errors.append(
                    f"{response['status_code']} {request['method']} {request['uri']}"
                )
        for checks in (recorder.get("checks") or {}).values():
            report.failures += [f"{label}: {c['name']}" for c in checks if c["status"] == "failure"]
    return report


def test_schemathesis_finds_no_server_error(seeded: Seeded, tmp_path: Path) -> None:
    config = _config(seeded, tmp_path / "schemathesis.toml")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(config),
        "run",
        f"{seeded.api.url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(
        # In the test's folder: schemathesis keeps a crash cache in its working directory.
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = run.stdout[-12000:] + run.stderr[-3000:]
    report = _read_report(tmp_path / "report")
    assert report.interactions > 500, output
    assert not report.server_errors, "\n".join(report.server_errors[:20]) + "\n" + output
    assert not report.errors, "\n".join(report.errors[:20]) + "\n" + output
    assert not report.failures, "\n".join(sorted(set(report.failures))) + "\n" + output
    assert run.returncode == 0, output
    log = seeded.api.log()
    assert "Traceback" not in log, log[-6000:]
