"""The commands on a terminal (a pseudo-terminal, through pexpect): the live job view updates
and Ctrl-C detaches without cancelling; colours show on a terminal and never with --json.

The view does not depend on the backend, so these run on the embedded one only."""

from __future__ import annotations

import io
import json
import re
import sys
import time
from pathlib import Path

import httpx
import pexpect
import pytest

from ml.backbones.testing import TINY_IMAGE_ID
from tests.client.cli_support import ROOT, cli_env, digits_folder, run
from tests.client.conftest import Live, Trained
from tests.support.stack import wait_until

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def terminal(live: Live, tmp_path: Path) -> dict[str, str]:
    if live.stack.backend.name != "embedded":
        pytest.skip("the terminal view is the same on every backend")
    return cli_env(live.url, live.key, tmp_path / "config.json", TERM="xterm-256color")


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable, ["-m", "app.cli", *args], env=env, cwd=str(ROOT), encoding="utf-8",
        dimensions=(50, 140), timeout=120,
    )  # fmt: skip


def auth(live: Live) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.key}"}


def job(live: Live, job_id: str) -> dict[str, object]:
    resp = httpx.get(f"{live.url}/v1/jobs/{job_id}", headers=auth(live))
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


def test_train_watch_updates_live_and_ctrl_c_detaches_without_cancelling(
    live: Live, terminal: dict[str, str], image_model: Trained
) -> None:
    # Long enough to watch several epochs go by and detach while it still runs, on a quiet
    # machine too (100 epochs of one-image steps at 128 px: minutes); cancelled at the end.
    child = spawn(terminal, "train", "--dataset", image_model.dataset_id, "--backbone",
                  TINY_IMAGE_ID, "--model", "cli-live", "--method", "full", "--epochs", "100",
                  "--batch-size", "1", "--hp", "patience=50", "--hp", "image_size=128",
                  "--watch")  # fmt: skip
    child.logfile_read = screen = io.StringIO()
    child.expect(r"Started job (job_\w+)")
    job_id = child.match.group(1)
    try:
        # The progress line redraws as the job goes: the epoch advances, with steps and an ETA.
        epochs: list[int] = []
        deadline = time.monotonic() + 300
        while len(set(epochs) - {0}) < 2 and time.monotonic() < deadline:
            child.expect(r"epoch (\d+)/100  step (\d+)/(\d+)  ETA (\d+:\d\d)")
            epochs.append(int(child.match.group(1)))
        assert epochs == sorted(epochs) and len(set(epochs) - {0}) >= 2, epochs
        child.expect(r"val_accuracy \d\.\d{3}")  # the latest metrics
        child.expect(r"epoch \d+/100: train_loss")  # an event as it arrived
        assert re.search(r"\x1b\[[0-9;]*m━", screen.getvalue())  # a drawn, coloured bar

        child.sendintr()
        child.expect(f"Detached from job {job_id}")
        child.expect(f"reattach: hone jobs watch {job_id}")
        child.expect(f"cancel: +hone jobs cancel {job_id}")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 130
        assert job(live, job_id)["status"] == "running"  # detached, not cancelled

        assert run(terminal, "jobs", "cancel", job_id).code == 0
    finally:
        child.close(force=True)
        httpx.post(f"{live.url}/v1/jobs/{job_id}/cancel", headers=auth(live))
    wait_until(lambda: job(live, job_id)["status"] == "cancelled", timeout=120, interval=0.5,
               what=f"{job_id} cancelled")  # fmt: skip


def test_a_terminal_gets_colours_a_progress_bar_and_json_gets_none(
    live: Live, terminal: dict[str, str], image_model: Trained, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    digits_folder(photos, per_class=3)
    upload = spawn(terminal, "datasets", "upload", str(photos), "--task",
                   "image_classification", "--wait")  # fmt: skip
    upload.expect(pexpect.EOF)
    shown = ESCAPE.sub("", upload.before)
    assert re.search(r"uploading photos/ ━+ [\d.]+/[\d.]+ kB", shown), shown
    assert "Examples per label" in shown and "Train on it" in shown

    matrix = spawn(terminal, "models", "show", f"{image_model.name}@{image_model.version}")
    matrix.expect(pexpect.EOF)
    # The diagonal of the confusion matrix is bold green; a mistake would be red.
    assert re.search(r"\x1b\[1;32m\d+\x1b\[0m", matrix.before), matrix.before

    listed = spawn(terminal, "models", "list", "--json")
    listed.expect(pexpect.EOF)
    assert "\x1b" not in listed.before
    assert image_model.name in {m["name"] for m in json.loads(listed.before)}
