"""Values from training made safe for JSON columns.

PostgreSQL's JSON type rejects NaN and Infinity (a diverged loss is NaN), and numpy scalars
are not JSON at all; both can appear in metrics and event data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | str | None):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
