"""Datasets and one finished job per backend, shared by the job tests (training is the slow
part; most assertions only need to look at a finished job). Session-scoped like the stack
they live in, so every module reuses them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.app.jobs.flows import (
    QUICK_IMAGE_JOB,
    create_job,
    digits_dataset,
    tweets_dataset,
    wait_for_job,
)
from tests.conftest import Stack


@dataclass(frozen=True)
class Datasets:
    digits: str  # 10 labels x 6 images
    tweets: str  # 60 tweets, 3 sentiments


@pytest.fixture(scope="session")
def datasets(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Datasets:
    folder = tmp_path_factory.mktemp("uploads")
    return Datasets(
        digits=digits_dataset(stack.client, stack.key_a, folder),
        tweets=tweets_dataset(stack.client, stack.key_a, folder),
    )


@pytest.fixture(scope="session")
def finished_job(stack: Stack, datasets: Datasets) -> dict[str, Any]:
    """A tiny image model fine-tuned for two epochs (method full), succeeded."""
    job = create_job(stack.client, stack.key_a, datasets.digits, "digits-e2e", **QUICK_IMAGE_JOB)
    return wait_for_job(stack.client, stack.key_a, job["id"])
