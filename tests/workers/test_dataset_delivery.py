"""Dataset processing's delivery guarantees on both databases: the lease, the reaper's
re-sends, and the worker's task run in this process against hand-made rows."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.auth.keys import ensure_project
from app.config import get_settings
from app.datasets import lifecycle, repository
from app.db import transaction
from app.models import Dataset
from app.models.base import new_id, utcnow
from app.queue import BrokerUnavailable
from app.storage.places import Storage
from tests.factories.uploads import tweets_csv
from tests.support.stack import Backend
from workers import context
from workers.datasets import process_dataset
from workers.reaper import ORPHAN_UPLOAD_AGE, requeue_stale_datasets, sweep_orphan_uploads

MakeDataset = Callable[..., str]
CSV_OPTIONS = {
    "filename": "tweets.csv",
    "kind": "csv",
    "text_column": "text",
    "label_column": "label",
}


def _insert(sessions: sessionmaker[Session], project_id: str, **values: Any) -> str:
    row = Dataset(project_id=project_id, name="d", task="text_classification",
                  options=CSV_OPTIONS, **values)  # fmt: skip
    with transaction(sessions) as session:
        session.add(row)
    return row.id


@pytest.fixture
def make_dataset(sessions: sessionmaker[Session]) -> MakeDataset:
    """Insert a text dataset row (processing unless told) with the given column values."""
    with transaction(sessions) as session:
        project_id = ensure_project(session, f"datasets-{secrets.token_hex(4)}").id
    return partial(_insert, sessions, project_id)


def _load(sessions: sessionmaker[Session], dataset_id: str) -> Dataset:
    with sessions() as session:
        return session.get_one(Dataset, dataset_id)


def test_one_live_attempt_per_dataset(
    sessions: sessionmaker[Session], make_dataset: MakeDataset
) -> None:
    dataset_id = make_dataset()
    with transaction(sessions) as session:
        assert lifecycle.claim(session, dataset_id, "a", 30) == 1
        assert lifecycle.claim(session, dataset_id, "b", 30) is None  # a duplicate
        assert lifecycle.renew(session, dataset_id, "a", 30) is False
        assert lifecycle.renew(session, dataset_id, "b", 30) is None
        assert not repository.release(session, dataset_id, "b", status="ready")
        assert repository.release(session, dataset_id, "a", status="ready")
        assert lifecycle.claim(session, dataset_id, "c", 30) is None  # ready: never again
    row = _load(sessions, dataset_id)
    assert (row.status, row.attempts, row.lease_owner) == ("ready", 1, None)


def test_reaper_resends_lost_and_orphaned_datasets_and_fails_exhausted_ones(
    database: Backend, sessions: sessionmaker[Session], make_dataset: MakeDataset, tmp_path: Path
) -> None:
    now = utcnow()
    expired, live = now - timedelta(seconds=1), now + timedelta(seconds=30)
    settings = database.settings(data_dir=tmp_path)  # lease 4 s: lost after 20 s; 3 attempts
    unsent = make_dataset(enqueued_at=None)  # the broker was down at upload
    dead = make_dataset(lease_owner="w1", lease_expires_at=expired, attempts=1, enqueued_at=now)
    spent = make_dataset(lease_owner="w2", lease_expires_at=expired, attempts=3, enqueued_at=now)
    alive = make_dataset(lease_owner="w3", lease_expires_at=live, attempts=1, enqueued_at=now)
    lost = make_dataset(enqueued_at=now - timedelta(seconds=21))
    waiting = make_dataset(enqueued_at=now - timedelta(seconds=5))
    done = make_dataset(status="ready", enqueued_at=None)
    (tmp_path / "uploads" / spent).mkdir(parents=True)

    mine = {unsent, dead, spent, alive, lost, waiting, done}  # the database is shared
    sent: list[str] = []
    requeue_stale_datasets(sessions, sent.append, settings, now=now)
    # `lost` waits: while a dataset is being processed, an old message is presumed queued.
    assert set(sent) & mine == {unsent, dead}
    row = _load(sessions, dead)
    assert (row.status, row.lease_owner, row.attempts, row.enqueued_at) == (
        "processing",
        None,
        1,
        now,
    )
    failed = _load(sessions, spent)
    assert (failed.status, failed.error_code) == ("failed", "processing_attempts_exhausted")
    assert failed.error_message and "3 times" in failed.error_message
    assert failed.finished_at is not None and failed.lease_owner is None
    assert not (tmp_path / "uploads" / spent).exists()
    assert _load(sessions, alive).lease_owner == "w3"

    with transaction(sessions) as session:
        session.get_one(Dataset, alive).status = "ready"
    sent.clear()  # nothing is processed now: the old message is presumed lost, the rest sent
    requeue_stale_datasets(sessions, sent.append, settings, now=now + timedelta(seconds=1))
    assert set(sent) & mine == {lost}


def test_a_refused_send_is_retried_at_the_next_pass(
    database: Backend, sessions: sessionmaker[Session], make_dataset: MakeDataset, tmp_path: Path
) -> None:
    settings = database.settings(data_dir=tmp_path)
    first, second = make_dataset(enqueued_at=None), make_dataset(enqueued_at=None)

    def refuse(dataset_id: str) -> None:
        raise BrokerUnavailable("connection refused")

    assert requeue_stale_datasets(sessions, refuse, settings) == []
    assert _load(sessions, first).enqueued_at is None  # still "not sent", not "sent just now"
    assert _load(sessions, second).enqueued_at is None
    sent: list[str] = []
    requeue_stale_datasets(sessions, sent.append, settings)
    assert {first, second} <= set(sent)


@pytest.fixture
def worker_settings(
    database: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The environment a worker process reads, so the task itself runs here; the data dir."""
    for name, value in database.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HONE_DATABASE_URL", database.settings().sqlalchemy_url)
    monkeypatch.setenv("HONE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    context._context_for.cache_clear()
    yield tmp_path
    context.context().engine.dispose()
    get_settings.cache_clear()
    context._context_for.cache_clear()


def _with_upload(data_dir: Path, dataset_id: str) -> Path:
    """The upload as the API leaves it: an object in the (embedded, local) store."""
    upload = data_dir / "uploads" / dataset_id
    upload.parent.mkdir(parents=True, exist_ok=True)
    tweets_csv(upload, 20)
    return upload


def test_the_task_processes_a_dataset_once_and_skips_duplicates(
    worker_settings: Path, sessions: sessionmaker[Session], make_dataset: MakeDataset
) -> None:
    dataset_id = make_dataset(enqueued_at=utcnow())
    folder = _with_upload(worker_settings, dataset_id)
    held = make_dataset(lease_owner="other", lease_expires_at=utcnow() + timedelta(seconds=30))
    held_folder = _with_upload(worker_settings, held)

    process_dataset(dataset_id)
    process_dataset(dataset_id)  # a duplicate delivery of a ready dataset
    process_dataset(held)  # another attempt holds it
    row = _load(sessions, dataset_id)
    assert (row.status, row.attempts, row.num_examples, row.lease_owner) == ("ready", 1, 20, None)
    assert not folder.exists()
    other = _load(sessions, held)
    assert (other.status, other.attempts, other.lease_owner) == ("processing", 0, "other")
    assert held_folder.exists()  # still the other attempt's input


def test_the_task_fails_a_dataset_past_its_attempts(
    worker_settings: Path, sessions: sessionmaker[Session], make_dataset: MakeDataset
) -> None:
    expired = utcnow() - timedelta(seconds=1)
    dataset_id = make_dataset(lease_owner="dead", lease_expires_at=expired, attempts=3)
    folder = _with_upload(worker_settings, dataset_id)
    process_dataset(dataset_id)  # a redelivery after the third attempt's worker died
    row = _load(sessions, dataset_id)
    assert (row.status, row.attempts, row.error_code) == (
        "failed",
        4,
        "processing_attempts_exhausted",
    )
    assert row.options["error_status"] == 500 and not folder.exists()


def test_uploads_no_dataset_will_process_are_swept_once_old(
    database: Backend, sessions: sessionmaker[Session], make_dataset: MakeDataset, tmp_path: Path
) -> None:
    """An upload whose request failed after storing it (its row never committed) would stay
    in the store for ever; the data workers' reaper removes it, and only it."""
    storage = Storage.from_settings(database.settings(data_dir=tmp_path))
    waiting = make_dataset()  # still processing: its upload is needed
    finished = make_dataset(status="ready")
    never_committed = new_id("ds")
    for dataset_id in (waiting, finished, never_committed):
        tweets_csv(tmp_path / "upload.csv", 5)
        storage.save_upload(tmp_path / "upload.csv", dataset_id)
    assert sweep_orphan_uploads(sessions, storage) == []  # all younger than an hour
    later = utcnow() + ORPHAN_UPLOAD_AGE + timedelta(minutes=1)
    assert sorted(sweep_orphan_uploads(sessions, storage, now=later)) == sorted(
        [finished, never_committed]
    )
    assert storage.upload_ids() == [waiting]
