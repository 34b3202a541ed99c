"""Cheap structural checks run while the client waits, so bad uploads get an immediate 4xx.

Reads at most a zip's central directory or the first KiBs of a text file; ``ingest`` does the
thorough work (and runs this again: a worker never trusts that the API did).
"""

import csv
import io
from pathlib import Path

from ml.datasets.archive import open_archive
from ml.datasets.errors import IngestError
from ml.datasets.formats import SUPPORTED_IMAGES, Kind, is_image_name, upload_kind
from ml.datasets.image_source import folder_target
from ml.datasets.layout import LABELS_CSV, image_folder_labels, plan_layout
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.tabular import check_keys, column_indexes, parse_json_object, text_columns
from ml.datasets.task import target_field, task_of
from ml.datasets.textfile import decode_head
from ml.tasks import Task

HEAD_BYTES = 64 * 1024


def _audit_folders(task: Task, options: IngestOptions, folders: set[str]) -> None:
    """Audit the folder names as if each were one example: a single label, or folders that
    name no target of this task (words for a regression task), fail here, before the upload
    is stored. The folder audit's report describes folders, not examples: it is dropped."""
    skips, candidates = SkipLog(), []
    for folder in sorted(folders):
        try:
            target = folder_target(task, options, folder)
        except SkipExampleError as error:
            skips.add_error(f"{folder}/", error)
            continue
        candidates.append(Candidate(source=f"{folder}/", target=target, key=folder))
    try:
        task.audit(candidates, skips, IngestLimits(min_examples_per_label=1))
    except IngestError as error:
        raise IngestError(
            error.code, error.message, field=error.field, status=error.status
        ) from error


def _check_zip(upload: Path, task: Task, options: IngestOptions, limits: IngestLimits) -> None:
    with open_archive(upload, limits) as archive:
        layout = plan_layout(archive.infolist())
    if not any(is_image_name(path) for path, _ in layout.files):
        raise IngestError(
            "no_examples",
            f"The zip contains no {SUPPORTED_IMAGES} images (judged by file extension).",
        )
    if layout.labels_csv is not None:
        return
    columns = task.columns(options)
    folders = image_folder_labels(layout)
    header = ",".join(("filename", *columns))
    if len(columns) > 1:
        raise IngestError(
            "missing_labels",
            f"A folder name holds one value, and {target_field(task)} names {len(columns)} "
            f"columns: add a {LABELS_CSV} with the header {header!r} at the zip's root.",
        )
    if not folders:
        raise IngestError(
            "missing_labels",
            "The images are not in label folders. Put each image in a folder named after its "
            f"label (cat/0001.jpg, dog/0002.jpg), or add a {LABELS_CSV} with columns "
            f"{header} at the zip's root.",
        )
    _audit_folders(task, options, folders)


def _check_text(upload: Path, kind: Kind, task: Task, options: IngestOptions) -> None:
    with upload.open("rb") as stream:
        head = stream.read(HEAD_BYTES + 1)
    complete = len(head) <= HEAD_BYTES
    text = decode_head(head[:HEAD_BYTES], options.filename, complete=complete)
    columns = text_columns(options, task)
    if kind == "text_csv":
        # newline=None: \r-only (old Mac) files read like any other, as ingest reads them.
        column_indexes(next(csv.reader(io.StringIO(text, newline=None)), []), columns)
        return
    lines = text.splitlines(keepends=True)
    first = next((line for line in lines if line.strip()), None)
    # A first record longer than the head is checked by ingest instead.
    if first is None or not (complete or first.endswith("\n")):
        return
    try:
        check_keys(parse_json_object(first), columns)
    except SkipExampleError as error:
        raise IngestError(
            "bad_json",
            f"The first record of {options.filename} is not usable: {error.detail}. "
            'A .jsonl file has one JSON object per line, e.g. {"text": "...", "label": "..."}.',
            status=400,
        ) from error


def preflight(upload: Path, options: IngestOptions, limits: IngestLimits) -> Kind:
    """Cheap structural checks: returns the kind ("image_zip" | "text_csv" | "text_jsonl").

    Raises IngestError for an upload that can never become a dataset (an unknown task, or
    options the task refuses, included).
    """
    task = task_of(options)
    task.columns(options)  # the task checks its options (target_column, multilabel)
    kind = upload_kind(options.filename, task)
    size = upload.stat().st_size
    if size == 0:
        raise IngestError(
            "empty_upload", "The uploaded file is empty (0 bytes). Check the upload.", status=400
        )
    if kind == "image_zip":
        _check_zip(upload, task, options, limits)
        return kind
    if size > limits.max_uncompressed_bytes:
        raise IngestError(
            "file_too_large",
            f"The file has {size} bytes; at most {limits.max_uncompressed_bytes} are allowed. "
            "Split the dataset.",
            status=413,
        )
    _check_text(upload, kind, task, options)
    return kind
