"""`hone up` as a person sees it on a terminal (a real pseudo-terminal: pexpect), and as a
service manager or a log collector sees it through a pipe.

On a terminal: a banner with the API's and the dashboard's URLs, the key (once) and where the
data lives, then one readable line per event, from the API and from the worker it starts; no
JSON, no Celery banner, no warning about running as root. Into a pipe: JSON log lines, as
`hone api` and `hone worker` write them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from app.console import describe
from tests.factories.uploads import digits_zip
from tests.support.api_process import free_port
from tests.support.shell import BIN, ShellProcess, user_env
from tests.support.stack import wait_until

pytestmark = pytest.mark.timeout(300)

STARTUP_S = 120  # two processes importing torch on a small, shared machine
KEY = re.compile(r"export HONE_API_KEY=(hone_\S+)")


def upload_digits(url: str, key: str, folder: Path) -> str:
    """A tiny image dataset, uploaded as a user would; its id."""
    path = folder / "digits.zip"
    digits_zip(path, per_class=6)
    with path.open("rb") as stream:
        resp = httpx.post(
            f"{url}/v1/datasets",
            headers={"Authorization": f"Bearer {key}"},
            files={"file": ("digits.zip", stream, "application/zip")},
            data={"task": "image_classification"},
            timeout=60,
        )
    assert resp.status_code in (201, 202), resp.text
    dataset_id: str = resp.json()["id"]
    return dataset_id


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[pexpect.spawn, str, Path]]:
    """`hone up` under a pseudo-terminal in a fresh data folder: (the terminal, url, folder)."""
    port = free_port()
    data = tmp_path / "data"
    env = user_env(HONE_DATA_DIR=str(data), HONE_HOST="127.0.0.1", HONE_PORT=str(port))
    child = pexpect.spawn(
        str(BIN / "hone"), ["up"], cwd=str(tmp_path), env=env, encoding="utf-8",
        timeout=STARTUP_S, dimensions=(50, 160),
    )  # fmt: skip
    child.logfile_read = (tmp_path / "terminal.txt").open("w")
    try:
        yield child, f"http://127.0.0.1:{port}", data
    finally:
        if child.isalive():  # a failed test: stop it as Ctrl+C would, then for good
            child.kill(2)
            child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=60)
            child.terminate(force=True)
        child.logfile_read.close()


def test_on_a_terminal_a_banner_then_one_readable_line_per_event(
    terminal: tuple[pexpect.spawn, str, Path], tmp_path: Path
) -> None:
    child, url, data = terminal
    child.expect(KEY)
    key, banner = child.match.group(1), child.before + child.after
    child.expect("Press Ctrl\\+C to stop")
    banner += child.before
    for shown in (f"{url}/v1", f"{url}/ui", f"{url}/docs", str(data), "Database", "Storage"):
        assert shown in banner, shown
    assert banner.count(key) == 2  # the key, and the line that exports it
    child.expect(r"\d\d:\d\d:\d\d  the API is ready")
    child.expect(r"\d\d:\d\d:\d\d  the worker is ready")

    dataset_id = upload_digits(url, key, tmp_path)
    child.expect(rf"dataset {dataset_id} is ready to train on")

    child.sendintr()  # Ctrl+C: the API stops, then the worker, warmly
    child.expect("Hone has stopped")
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 0, child.signalstatus

    transcript = (tmp_path / "terminal.txt").read_text()
    lines = [line.strip() for line in transcript.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("{")], "JSON log lines on a terminal"
    for hidden in ("celery@", "[tasks]", "superuser privileges", "SecurityWarning", "Traceback"):
        assert hidden not in transcript, hidden
    events = [line for line in lines if re.match(r"\d\d:\d\d:\d\d  ", line)]
    assert f"dataset {dataset_id} is being processed" in "\n".join(events)
    assert all(len(line) < 160 for line in events), events


def test_into_a_pipe_it_logs_json_lines(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = user_env(HONE_DATA_DIR=str(tmp_path / "data"), HONE_HOST="127.0.0.1", HONE_PORT=str(port))
    proc = ShellProcess("hone up", tmp_path, env, tmp_path / "up.log")
    try:
        key = proc.wait_for_log(KEY.pattern, timeout=STARTUP_S)[1]
        proc.wait_for_log(r'"message": "api ready"', timeout=STARTUP_S)
        dataset_id = upload_digits(url, key, tmp_path)

        def ready_record() -> dict[str, object] | None:
            for record in json_records(proc.log()):
                if record.get("dataset_id") == dataset_id and record["message"] == "dataset ready":
                    return record
            return None

        record = wait_until(ready_record, timeout=120, what="the dataset's JSON log line")
        assert record["logger"] == "hone.worker.datasets" and record["level"] == "info"
    finally:
        status = proc.stop()
    assert status != -9, proc.log()
    log = proc.log()
    assert "Press Ctrl+C to stop" not in log, "the terminal's banner in a pipe"
    assert not re.search(r"^\d\d:\d\d:\d\d  ", log, re.MULTILINE), "console lines in a pipe"


def test_a_sigterm_to_hone_up_alone_stops_its_worker_too(tmp_path: Path) -> None:
    """`kill PID` (or a service manager that signals the main process only): `hone up` must
    stop the worker it started, not leave it running without an API."""
    port = free_port()
    env = user_env(HONE_DATA_DIR=str(tmp_path / "data"), HONE_HOST="127.0.0.1", HONE_PORT=str(port))
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [str(BIN / "hone"), "up"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(
            lambda: ' ready."' in log_path.read_text(errors="replace"),  # Celery's "… ready."
            timeout=STARTUP_S,
            what="the worker",
        )
        (worker,) = children(up.pid)
        os.kill(up.pid, signal.SIGTERM)
        assert up.wait(timeout=60) == 128 + signal.SIGTERM
        wait_until(lambda: not alive(worker), timeout=60, what=f"worker {worker} to stop")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(up.pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent's parent) has stopped too.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def json_records(log: str) -> list[dict[str, object]]:
    records = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _record(logger: str, level: int, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(logger, level, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_failures_say_what_failed_and_where_to_read_why() -> None:
    """The lines no quick test provokes for real: each names its dataset or job and the
    command that shows the reason; noise from libraries is left out."""
    failed = _record("hone.worker.training", logging.WARNING, "job failed: %s", "out_of_memory",
                     job_id="job_1")  # fmt: skip
    assert describe(failed) == "job job_1 failed (out_of_memory); `hone jobs show job_1` says why"
    try:
        raise RuntimeError("boom\ntraceback lines")
    except RuntimeError:
        crashed = _record("hone.worker.training", logging.ERROR, "job crashed", job_id="job_2")
        crashed.exc_info = sys.exc_info()
    assert describe(crashed) == (
        "job job_2 failed (RuntimeError: boom); `hone jobs show job_2` says why"
    )
    dataset = _record(
        "hone.worker.datasets", logging.INFO, "dataset %s", "failed", dataset_id="ds_1"
    )
    assert describe(dataset) == "dataset ds_1 failed; `hone datasets show ds_1` says why"
    lost = _record("hone.worker.datasets", logging.ERROR, "dataset failed: worker lost too often",
                   dataset_id="ds_2")  # fmt: skip
    assert describe(lost) == "error: dataset failed: worker lost too often (dataset ds_2)"
    bind = _record("uvicorn.error", logging.ERROR, "[Errno 98] address already in use")
    assert describe(bind) == "error: [Errno 98] address already in use"
    noise = _record("kombu.connection", logging.WARNING, "No hostname was supplied")
    assert describe(noise) is None
    assert describe(_record("uvicorn.error", logging.INFO, "Uvicorn running on %s", "x")) is None
