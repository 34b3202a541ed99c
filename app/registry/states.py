"""A model version's statuses, in one place: registering -> ready | failed.

A version row is created `registering` (its artifact is still being written) and only
`mark_ready` makes it `ready`, the one status that is served. The column's default, in the ORM
and in the database, is `registering`: a row written without a status is never served.
"""

from __future__ import annotations

from typing import Literal

VersionStatus = Literal["registering", "ready", "failed"]

REGISTERING: VersionStatus = "registering"
READY: VersionStatus = "ready"
FAILED: VersionStatus = "failed"
