"""Bounds on what a client sends in paths, queries, headers and bodies, shared by every router.

Python integers are unbounded; the registry's columns are not. SQLite refuses to bind an
integer above 2^63 (OverflowError: a 500) and PostgreSQL's INTEGER stops at 2^31 - 1, so a
number no row can hold is refused at the edge with 422, on both databases. Strings that are
compared with id columns keep to the ids' alphabet and length (PostgreSQL text cannot even
hold a NUL). Use these types inside `Path()`, `Query()`, `Header()` or a pydantic field
instead of a bare `int` or `str`:

    version: Annotated[VersionNumber, Path()]
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from pydantic import Field

# The largest value of a PostgreSQL INTEGER column (versions, event ids, seeds); SQLite's
# 64-bit INTEGER holds it too.
INT_MAX = 2**31 - 1

BoundedInt = Annotated[int, Field(ge=-INT_MAX, le=INT_MAX)]
NonNegativeInt = Annotated[int, Field(ge=0, le=INT_MAX)]
PositiveInt = Annotated[int, Field(ge=1, le=INT_MAX)]
# A model version number: 1, 2, 3 ... per model.
VersionNumber = Annotated[PositiveInt, Field(description="A model version: 1, 2, 3 ...")]
# A job event id, as a cursor (`?after=`, `Last-Event-ID`).
EventId = Annotated[NonNegativeInt, Field(description="A job event id.")]

# Ids are `<prefix>_<hex>` (app/models/base.py new_id); a string outside this alphabet or
# length names nothing, whatever its prefix.
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ResourceId = Annotated[str, Field(pattern=ID_PATTERN, description="An id: ds_..., job_...")]
# The idempotency_keys.key column is 200 characters.
IDEMPOTENCY_KEY_MAX = 200
# The Idempotency-Key header of every create endpoint.
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
]
