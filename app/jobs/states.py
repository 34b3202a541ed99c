"""A job's statuses and how they move: queued -> running -> succeeded | failed | cancelled,
with `cancelling` while a running job stops. The API and the workers share these names."""

from __future__ import annotations

from typing import Literal

JobStatus = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]

QUEUED: JobStatus = "queued"
RUNNING: JobStatus = "running"
CANCELLING: JobStatus = "cancelling"
SUCCEEDED: JobStatus = "succeeded"
FAILED: JobStatus = "failed"
CANCELLED: JobStatus = "cancelled"

TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})
# Statuses in which a worker holds (or may take) the job's lease.
LEASED: frozenset[str] = frozenset({RUNNING, CANCELLING})
CLAIMABLE: frozenset[str] = frozenset({QUEUED, RUNNING})
