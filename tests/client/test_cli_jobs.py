"""`hone train` and `hone jobs ...` end to end, in a pipe (the terminal view: test_cli_terminal)."""

from __future__ import annotations

import re
from pathlib import Path

from ml.backbones.testing import TINY_TEXT_ID
from tests.client.cli_support import Hone
from tests.client.conftest import Live, Trained
from tests.factories.uploads import tweets_csv


def test_train_watch_follows_the_job_to_its_outcome_and_jobs_commands_show_it(
    live: Live, text_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    train = ["train", "--dataset", text_model.dataset_id, "--backbone", TINY_TEXT_ID,
             "--model", "cli-watched", "--method", "linear_probe", "--seed", "3"]  # fmt: skip

    watched = hone(*train, "--watch").stdout

    # Events as they came, then the outcome: the method, the version, the key metric.
    lines = watched.splitlines()
    assert "job created" in lines[0]
    assert any("registered model cli-watched" in line for line in lines)
    assert re.search(r"Succeeded: job (job_\w+) -> model cli-watched version 1", watched)
    assert "Method: linear_probe" in watched and re.search(r"accuracy \d\.\d{3}", watched)
    job_id = re.search(r"job (job_\w+)", watched).group(1)  # type: ignore[union-attr]

    (listed,) = hone.json("jobs", "list", "--model", "cli-watched")
    assert listed["id"] == job_id and listed["status"] == "succeeded"
    assert job_id in hone("jobs", "list", "--status", "succeeded").stdout
    shown = hone("jobs", "show", job_id).stdout
    assert "succeeded" in shown and "cli-watched@1" in shown and "linear_probe" in shown
    assert hone.json("jobs", "show", job_id)["model_version"] == {
        "name": "cli-watched",
        "version": 1,
    }

    logs = hone("jobs", "logs", job_id).stdout.splitlines()
    assert "job created" in logs[0] and "registered model" in logs[-1]
    events = hone.json("jobs", "logs", job_id)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert len(events) == len(logs)
    followed = hone("jobs", "logs", job_id, "--follow", "--json").jsonl()
    assert [e["id"] for e in followed] == [e["id"] for e in events]

    # Watching a finished job answers at once; cancelling it is refused with the API's detail.
    assert hone.json("jobs", "watch", job_id)["status"] == "succeeded"
    refused = hone("jobs", "cancel", job_id, ok=False)
    assert refused.code == 1 and refused.stderr.startswith("hone: ")
    assert len(refused.stderr.splitlines()) == 1 and "Traceback" not in refused.stderr


def test_train_without_watch_prints_the_id_a_dry_run_prints_the_plan(
    live: Live, text_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    train = ["train", "--dataset", text_model.dataset_id, "--backbone", TINY_TEXT_ID,
             "--model", "cli-scripted", "--method", "linear_probe",
             "--hp", "max_length=32"]  # fmt: skip

    plan = hone.json(*train, "--dry-run")
    assert plan["dry_run"] is True and plan["plan"]["hyperparameters"]["max_length"] == 32
    shown = hone(*train, "--dry-run").stdout
    assert "Estimated" in shown and "linear_probe" in shown
    assert hone.json("jobs", "list", "--model", "cli-scripted") == []  # a dry run starts nothing

    job_id = hone(*train).stdout.strip()  # JOB=$(hone train ...) in a script
    assert re.fullmatch(r"job_\w+", job_id)
    watched = hone("jobs", "watch", job_id).stdout
    assert "Succeeded" in watched and "cli-scripted version 1" in watched
    final = hone.json("jobs", "show", job_id)
    assert final["status"] == "succeeded" and final["hyperparameters"]["max_length"] == 32


def test_train_takes_a_dataset_by_the_name_it_was_uploaded_with(
    live: Live, text_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    csv = tmp_path / "tickets.csv"
    tweets_csv(csv, 40)
    first = hone.json("datasets", "upload", str(csv), "--task", "text_classification",
                      "--name", "cli-by-name", "--wait")  # fmt: skip
    newest = hone.json("datasets", "upload", str(csv), "--task", "text_classification",
                       "--name", "cli-by-name", "--wait")  # fmt: skip
    assert first["id"] != newest["id"]
    train = ["train", "--backbone", TINY_TEXT_ID, "--model", "cli-by-name", "--dry-run"]

    plan = hone.json(*train, "--dataset", "cli-by-name")
    assert plan["dataset_id"] == newest["id"]  # the newest of that name
    assert hone.json(*train, "--dataset", first["id"])["dataset_id"] == first["id"]
    missing = hone(*train, "--dataset", "no-such-name", ok=False)
    assert missing.code == 2 and "no dataset is named 'no-such-name'" in missing.stderr
