"""A dataset's statuses: processing -> ready | failed. The API and the workers share these
names; a dataset is leased to a worker attempt only while it is processing."""

from __future__ import annotations

from typing import Literal

DatasetStatus = Literal["processing", "ready", "failed"]

PROCESSING: DatasetStatus = "processing"
READY: DatasetStatus = "ready"
FAILED: DatasetStatus = "failed"
