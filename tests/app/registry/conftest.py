"""One model with two versions per backend, trained by two jobs submitted together."""

from __future__ import annotations

from typing import Any

import pytest

from tests.app.jobs.flows import QUICK_TEXT_JOB, create_job, tweets_dataset, wait_for_job
from tests.conftest import Stack

MODEL = "sentiment"


@pytest.fixture(scope="module")
def two_jobs(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Both jobs are queued before either runs, so both race to register into MODEL."""
    dataset = tweets_dataset(stack.client, stack.key_a, tmp_path_factory.mktemp("uploads"))
    jobs = [
        create_job(stack.client, stack.key_a, dataset, MODEL, seed=seed, **QUICK_TEXT_JOB)
        for seed in (1, 2)
    ]
    return [wait_for_job(stack.client, stack.key_a, job["id"]) for job in jobs]
