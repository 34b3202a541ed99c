"""Records out of CSV and JSONL text: column checks and per-record parse errors."""

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestOptions
from ml.datasets.records import SkipExampleError, SkipLog
from ml.datasets.task import target_field
from ml.tasks import Task


@dataclass(frozen=True)
class Columns:
    """The columns (CSV) or keys (JSONL) a file must have, and how to explain a missing one."""

    names: tuple[str, ...]
    fields: tuple[str, ...]  # the request field that chose each name
    where: str  # the file, as the user knows it
    hint: str

    def missing(self, name: str, present: Sequence[str]) -> IngestError:
        return IngestError(
            "missing_column",
            f"{self.where} has no column {name!r}; its columns are {list(present)}. {self.hint}",
            field=self.fields[self.names.index(name)],
            status=422,
        )


def text_columns(options: IngestOptions, task: Task) -> Columns:
    """The text column, then the task's target column(s)."""
    targets = task.columns(options)
    field = target_field(task)
    return Columns(
        names=(options.text_column, *targets),
        fields=("text_column", *(field for _ in targets)),
        where=options.filename,
        hint=f"Choose the columns with the text_column and {field} fields "
        f"(now {options.text_column!r} and {', '.join(repr(name) for name in targets)}).",
    )


def column_indexes(header: Sequence[str], columns: Columns) -> list[int]:
    """Position of each wanted column: exact match first, then ignoring case and spaces."""
    cleaned = [cell.strip() for cell in header]
    folded = [cell.casefold() for cell in cleaned]
    indexes = []
    for name in columns.names:
        if name in cleaned:
            indexes.append(cleaned.index(name))
        elif name.strip().casefold() in folded:
            indexes.append(folded.index(name.strip().casefold()))
        else:
            raise columns.missing(name, cleaned)
    return indexes


def csv_records(
    lines: Iterable[tuple[int, str]], columns: Columns, skips: SkipLog, max_field_chars: int = 0
) -> Iterator[tuple[int, tuple[str | None, ...]]]:
    """(first line of the record, the wanted cells; None where a short row lacks one).

    The csv module's own field cap (131,072 characters by default, process-wide) is raised to
    what one line may hold, so HONE_MAX_TEXT_CHARS alone decides which texts are too long.
    """
    csv.field_size_limit(max(csv.field_size_limit(), max_field_chars))
    reader = csv.reader(text for _, text in lines)
    indexes = column_indexes(next(reader, []), columns)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # The csv module refuses fields over its size limit; the rest of the file is fine.
            reason = "too_large" if "field limit" in str(error) else "corrupt"
            skips.add(f"line {start}", reason, f"cannot parse this CSV record ({error})")
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank lines are layout, not records
        yield start, tuple(row[i] if i < len(row) else None for i in indexes)


def parse_json_object(line: str) -> dict[str, object]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as error:
        raise SkipExampleError("corrupt", f"not valid JSON ({error})") from error
    if not isinstance(value, dict):
        raise SkipExampleError("corrupt", 'expected a JSON object like {"text": ..., "label": ...}')
    return value


def check_keys(value: dict[str, object], columns: Columns) -> None:
    for name in columns.names:
        if name not in value:
            raise columns.missing(name, list(value))


def jsonl_records(
    lines: Iterable[tuple[int, str]], columns: Columns, skips: SkipLog
) -> Iterator[tuple[int, tuple[object, ...]]]:
    """(line, the wanted values; None where absent). The first object must have every key."""
    checked = False
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value = parse_json_object(line)
        except SkipExampleError as error:
            skips.add_error(f"line {number}", error)
            continue
        if not checked:
            check_keys(value, columns)
            checked = True
        yield number, tuple(value.get(name) for name in columns.names)
