"""The embedded broker keeps every file under the data directory, whatever the working
directory of the process that sends or consumes (kombu's default puts its exchange tables in
`./control`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings
from app.queue import TaskQueue


def test_sending_writes_nothing_into_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "somewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_dirs()
    queue = TaskQueue(settings)
    try:
        queue.process_dataset("ds_broker_files")
        queue.train_job("job_broker_files")
    finally:
        queue.close()
    assert list(workdir.iterdir()) == []
    broker = settings.broker_dir
    assert {p.name for p in (broker / "control").iterdir()} >= {"data.exchange", "train.exchange"}
    assert len(list((broker / "queue").iterdir())) == 2
