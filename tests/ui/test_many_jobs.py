"""Pages stay fast with many rows: lists are paged as the API pages them."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx

from app.auth.keys import create_key, ensure_project
from app.db import make_engine, make_session_factory, transaction
from app.models import Job
from app.models.base import new_id, utcnow
from tests.conftest import Stack
from tests.ui.conftest import session_client

MANY = 1000
PAGE = 25  # app/ui/views/common.py PAGE_SIZE


def make_jobs(stack: Stack, project_name: str, n: int) -> str:
    """A project with `n` finished jobs, inserted as rows (no worker is involved: finished
    jobs are nothing a worker's reaper picks up); returns its key."""
    engine = make_engine(stack.backend.settings().sqlalchemy_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            project = ensure_project(session, project_name)
            key = create_key(session, project_name)
            now = utcnow()
            statuses = ("succeeded", "failed", "cancelled")
            session.add_all(
                Job(
                    id=new_id("job"),
                    project_id=project.id,
                    dataset_id="ds_many",
                    backbone="tiny_image",
                    model_name=f"model-{i % 7}",
                    method="auto",
                    status=statuses[i % 3],
                    progress={"epoch": 3, "epochs": 3, "step": 30, "total_steps": 30},
                    metrics={"val_macro_f1": 0.5 + (i % 50) / 100, "val_loss": 0.4},
                    created_at=now - timedelta(seconds=n - i),
                    finished_at=now,
                )
                for i in range(n)
            )
    finally:
        engine.dispose()
    return key


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<div class="muted small mono">(job_[0-9a-f]+)</div>', html)


def test_the_jobs_page_pages_a_thousand_jobs(stack: Stack, ui_url: str) -> None:
    key = make_jobs(stack, "team-many", MANY)
    with session_client(ui_url, key) as client:
        client.get("/ui/jobs")  # warm: the first request of a connection pays its set-up
        started = time.monotonic()
        first = client.get("/ui/jobs")
        elapsed = time.monotonic() - started
        assert first.status_code == 200
        assert elapsed < 2.0, f"/ui/jobs took {elapsed:.2f} s with {MANY} jobs"
        ids = _row_ids(first.text)
        assert len(ids) == PAGE
        found = re.search(r'href="([^"]+)" rel="next"', first.text)
        assert found, "no link to the next page"
        second = client.get(httpx.URL(found.group(1).replace("&amp;", "&")))
        more = _row_ids(second.text)
        assert len(more) == PAGE and not set(ids) & set(more)
        assert max(more) < min(ids)  # newest first, as the API pages
        filtered = client.get("/ui/jobs?status=failed")
        assert filtered.text.count('data-test="job-row"') == PAGE
        assert 'data-status="succeeded"' not in filtered.text
        for path in ("/ui", "/ui/models", "/ui/datasets"):
            started = time.monotonic()
            assert client.get(path).status_code == 200
            assert time.monotonic() - started < 2.0, path
