"""Candidates from a text upload (.csv or .jsonl)."""

from pathlib import Path

from ml.datasets.formats import Kind
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.tabular import csv_records, jsonl_records, text_columns
from ml.datasets.task import task_of
from ml.datasets.textfile import utf8_lines
from ml.text_input import TextRejected, clean_text

# Room for a longest allowed text (up to 4 UTF-8 bytes a character) plus the other columns.
_LINE_SLACK_BYTES = 1024 * 1024


def max_line_bytes(limits: IngestLimits) -> int:
    return 4 * limits.max_text_chars + _LINE_SLACK_BYTES


def normalize_text(text: str) -> str:
    """The form duplicates are judged by: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def collect_texts(
    upload: Path, kind: Kind, options: IngestOptions, limits: IngestLimits, skips: SkipLog
) -> list[Candidate]:
    task = task_of(options)
    columns = text_columns(options, task)
    target_columns = columns.names[1:]
    candidates = []
    with upload.open("rb") as stream:
        lines = utf8_lines(stream, options.filename, max_line_bytes(limits))
        records = (
            csv_records(lines, columns, skips, max_line_bytes(limits))
            if kind == "text_csv"
            else jsonl_records(lines, columns, skips)
        )
        for line, (text_value, *target_cells) in records:
            source = f"line {line}"
            try:
                text = clean_text(text_value, limits.max_text_chars)
                target = task.parse_target(target_cells, options)
            except TextRejected as error:
                skips.add(source, error.reason, error.detail)
                continue
            except SkipExampleError as error:
                skips.add_error(source, error)
                continue
            candidates.append(
                Candidate(
                    source=source,
                    target=target,
                    key=normalize_text(text),
                    text=text,
                    columns=target_columns,
                )
            )
    return candidates
