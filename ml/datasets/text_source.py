"""Candidates from a text upload (.csv or .jsonl)."""

from pathlib import Path

from ml.datasets.formats import Kind
from ml.datasets.labels import parse_labels
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.tabular import csv_records, jsonl_records, text_columns
from ml.datasets.textfile import utf8_lines

# Room for a longest allowed text (up to 4 UTF-8 bytes a character) plus the other columns.
_LINE_SLACK_BYTES = 1024 * 1024


def max_line_bytes(limits: IngestLimits) -> int:
    return 4 * limits.max_text_chars + _LINE_SLACK_BYTES


def normalize_text(text: str) -> str:
    """The form duplicates are judged by: whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def _clean_text(value: object, max_chars: int) -> str:
    if value is None:
        raise SkipExampleError("empty_text", "there is no text")
    if not isinstance(value, str):
        raise SkipExampleError("corrupt", f"the text must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise SkipExampleError("empty_text", "the text is empty")
    if len(text) > max_chars:
        raise SkipExampleError(
            "too_large", f"the text has {len(text)} characters; at most {max_chars} are allowed"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # a JSON "\ud800" escape decodes to a lone surrogate
        raise SkipExampleError("corrupt", "the text contains invalid unicode escapes") from error
    return text


def collect_texts(
    upload: Path, kind: Kind, options: IngestOptions, limits: IngestLimits, skips: SkipLog
) -> list[Candidate]:
    columns = text_columns(options)
    candidates = []
    with upload.open("rb") as stream:
        lines = utf8_lines(stream, options.filename, max_line_bytes(limits))
        records = (
            csv_records(lines, columns, skips)
            if kind == "text_csv"
            else jsonl_records(lines, columns, skips)
        )
        for line, (text_value, label_value) in records:
            source = f"line {line}"
            try:
                text = _clean_text(text_value, limits.max_text_chars)
                labels = parse_labels(label_value, options.multilabel)
            except SkipExampleError as error:
                skips.add_error(source, error)
                continue
            candidates.append(
                Candidate(source=source, labels=labels, key=normalize_text(text), text=text)
            )
    return candidates
