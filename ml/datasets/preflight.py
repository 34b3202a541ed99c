"""Cheap structural checks run while the client waits, so bad uploads get an immediate 4xx.

Reads at most a zip's central directory or the first KiBs of a text file; ``ingest`` does the
thorough work (and runs this again: a worker never trusts that the API did).
"""

import csv
import io
from pathlib import Path

from ml.datasets.archive import open_archive
from ml.datasets.audit import single_label_error
from ml.datasets.errors import IngestError
from ml.datasets.formats import SUPPORTED_IMAGES, Kind, is_image_name, upload_kind
from ml.datasets.layout import LABELS_CSV, image_folder_labels, plan_layout
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import SkipExampleError
from ml.datasets.tabular import check_keys, column_indexes, parse_json_object, text_columns
from ml.datasets.textfile import decode_head

HEAD_BYTES = 64 * 1024


def _check_zip(upload: Path, limits: IngestLimits) -> None:
    with open_archive(upload, limits) as archive:
        layout = plan_layout(archive.infolist())
    if not any(is_image_name(path) for path, _ in layout.files):
        raise IngestError(
            "no_examples",
            f"The zip contains no {SUPPORTED_IMAGES} images (judged by file extension).",
        )
    if layout.labels_csv is not None:
        return
    labels = image_folder_labels(layout)
    if not labels:
        raise IngestError(
            "missing_labels",
            "The images are not in label folders. Put each image in a folder named after its "
            f"label (cat/0001.jpg, dog/0002.jpg), or add a {LABELS_CSV} with columns "
            "filename,label at the zip's root.",
        )
    if len(labels) == 1:
        raise single_label_error(labels.pop())


def _check_text(upload: Path, kind: Kind, options: IngestOptions) -> None:
    with upload.open("rb") as stream:
        head = stream.read(HEAD_BYTES + 1)
    complete = len(head) <= HEAD_BYTES
    text = decode_head(head[:HEAD_BYTES], options.filename, complete=complete)
    columns = text_columns(options)
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

    Raises IngestError for an upload that can never become a dataset.
    """
    kind = upload_kind(options.filename, options.task)
    size = upload.stat().st_size
    if size == 0:
        raise IngestError(
            "empty_upload", "The uploaded file is empty (0 bytes). Check the upload.", status=400
        )
    if kind == "image_zip":
        _check_zip(upload, limits)
        return kind
    if size > limits.max_uncompressed_bytes:
        raise IngestError(
            "file_too_large",
            f"The file has {size} bytes; at most {limits.max_uncompressed_bytes} are allowed. "
            "Split the dataset.",
            status=413,
        )
    _check_text(upload, kind, options)
    return kind
