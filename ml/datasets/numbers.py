"""A number a user wrote in a cell or a JSON value, or the reason it is not one."""

import json
import math
import re

from ml.datasets.records import SkipExampleError

# Plain decimal notation: 3, -2.5, .5, 3e4. Python's float() also takes "1_000", "nan",
# "infinity" and non-ASCII digits, none of which a spreadsheet means as a number.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+(?:[.,' ][0-9]{3})*,[0-9]+|[+-]?[0-9]{1,3}(?:,[0-9]{3})+")
# How spreadsheets, pandas and R write "no value".
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?"})
# Beyond this, float32 training and the report's squares lose the number; rescale instead.
MAX_ABS = 1e15


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _finite(number: float, shown: str, where: str) -> float:
    if math.isnan(number):
        raise SkipExampleError("missing_target", f"{where} is NaN, which marks a missing value")
    if math.isinf(number):
        raise SkipExampleError("invalid_target", f"{where} is {shown}, not a finite number")
    if abs(number) > MAX_ABS:
        raise SkipExampleError(
            "invalid_target",
            f"{where} is {shown}, beyond ±{MAX_ABS:g}: rescale the column (e.g. to thousands)",
        )
    return number


def parse_number(value: object, where: str) -> float:
    """A finite float from a CSV cell (str) or a JSON value; raises SkipExampleError with
    reason missing_target or invalid_target and a detail that starts with ``where``."""
    if value is None:
        raise SkipExampleError("missing_target", f"{where} has no value")
    if isinstance(value, bool):
        raise SkipExampleError("invalid_target", f"{where} is {json.dumps(value)}, not a number")
    if isinstance(value, int | float):
        try:
            return _finite(float(value), _shown(value), where)
        except OverflowError:  # a JSON integer of hundreds of digits
            return _finite(math.inf, "a huge integer", where)
    if not isinstance(value, str):
        raise SkipExampleError(
            "invalid_target", f"{where} is {_shown(value)}, not a number like 3.5, -2 or 1e4"
        )
    cell = value.strip()
    if not cell:
        raise SkipExampleError("missing_target", f"{where} is empty")
    if cell.casefold() in MISSING_MARKERS:
        raise SkipExampleError("missing_target", f"{where} is {cell!r}, which marks no value")
    if _NUMBER.fullmatch(cell):
        return _finite(float(cell), _shown(cell), where)
    if _DECIMAL_COMMA.fullmatch(cell):
        raise SkipExampleError(
            "invalid_target",
            f"{where} is {_shown(cell)}: write decimals with a dot (3.5) and no thousands "
            "separators",
        )
    if cell.casefold().lstrip("+-") in ("inf", "infinity"):
        raise SkipExampleError("invalid_target", f"{where} is {_shown(cell)}, not a finite number")
    raise SkipExampleError(
        "invalid_target", f"{where} is {_shown(cell)}, not a number like 3.5, -2 or 1e4"
    )
