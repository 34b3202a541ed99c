"""The embedded broker keeps every file under the data directory, whatever the working
directory of the process that sends or consumes (kombu's default puts its exchange tables in
`./control`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.stack import ROOT

# A fresh process: kombu remembers the exchanges it declared for the life of a process, so in
# a process that sent before, the tables would not be written again.
SEND = """
from app.config import Settings
from app.queue import TaskQueue

settings = Settings()
settings.ensure_dirs()
queue = TaskQueue(settings)
queue.process_dataset("ds_broker_files")
queue.train_job("job_broker_files")
queue.close()
"""


def test_sending_writes_nothing_into_the_working_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "somewhere"
    workdir.mkdir()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HONE_")}
    env.update(HONE_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", SEND], cwd=workdir, env=env, check=True, timeout=120)
    assert list(workdir.iterdir()) == []
    broker = data_dir / "broker"
    assert {p.name for p in (broker / "control").iterdir()} >= {"data.exchange", "train.exchange"}
    assert len(list((broker / "queue").iterdir())) == 2
