"""Regression targets as ingest reads them: the target columns an upload names, and a row's
numbers from their cells."""

from collections.abc import Sequence

from ml.datasets.errors import IngestError
from ml.datasets.numbers import parse_number
from ml.datasets.options import IngestOptions
from ml.datasets.records import SkipExampleError

# One output of the head per target: a few dozen is already a very wide regression.
MAX_TARGETS = 32
# Target names become report keys, metric names and API fields, like labels.
MAX_NAME_CHARS = 200


def _refuse(message: str, field: str = "target_column") -> IngestError:
    return IngestError("invalid_target_column", message, field=field)


def target_names(options: IngestOptions) -> tuple[str, ...]:
    """The target columns ``target_column`` names ("price", or "price,rent"), checked."""
    if options.multilabel:
        raise IngestError(
            "multilabel_regression",
            f"multilabel applies to classification; task {options.task} predicts numbers. "
            "Leave multilabel out, or name several target columns in target_column.",
            field="multilabel",
        )
    names = tuple(name.strip() for name in options.target_column.split(","))
    if not all(names):
        raise _refuse(
            f"target_column {options.target_column!r} has an empty name: name one column, "
            "or several separated by commas (price,rent)."
        )
    if len(set(names)) < len(names):
        raise _refuse(f"target_column {options.target_column!r} names a column twice.")
    if len(names) > MAX_TARGETS:
        raise _refuse(f"target_column names {len(names)} columns; at most {MAX_TARGETS}.")
    if any(len(name) > MAX_NAME_CHARS for name in names):
        raise _refuse(f"A target column name is longer than {MAX_NAME_CHARS} characters.")
    return names


def parse_targets(cells: Sequence[object], names: Sequence[str]) -> tuple[float, ...]:
    """One finite float per target column; raises SkipExampleError naming the column."""
    if len(cells) != len(names):
        raise SkipExampleError(
            "missing_target", f"{len(cells)} value(s) for the {len(names)} target columns"
        )
    return tuple(
        parse_number(cell, f"column {name!r}") for cell, name in zip(cells, names, strict=True)
    )
