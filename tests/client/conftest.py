"""The client's tests run against a real `hone api` (uvicorn on loopback) and a real worker,
on PostgreSQL + Redis and on the embedded default: the SDK and the user commands speak HTTP to
it exactly as a user's machine would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import Stack
from tests.support.api_process import ApiProcess


@dataclass(frozen=True)
class Live:
    """A running API: its URL, two projects' keys, and the stack behind it."""

    url: str
    key: str
    other_key: str
    stack: Stack


@pytest.fixture(scope="session")
def live(stack: Stack) -> Iterator[Live]:
    server = ApiProcess(stack.backend, stack.backend.data_dir / "client-api.log").start()
    yield Live(server.url, stack.key_a, stack.key_b, stack)
    server.stop()


# The trained digits (image) and tweets (text) models the inference tests share: one of each
# per backend, trained once per session whichever folder's tests ask first.
from tests.app.inference.conftest import Trained, image_model, text_model  # noqa: E402

__all__ = ["Live", "Trained", "image_model", "live", "text_model"]
