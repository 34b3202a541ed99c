"""labels.csv in an image zip: which target (labels, or numbers) each listed file has."""

import io
import unicodedata
import zipfile

from ml.datasets.archive import ByteBudget, read_entry
from ml.datasets.errors import IngestError
from ml.datasets.layout import LABELS_CSV, ArchiveLayout
from ml.datasets.options import IngestOptions
from ml.datasets.records import SkipExampleError, SkipLog
from ml.datasets.tabular import Columns, csv_records
from ml.datasets.task import missing_target, target_field
from ml.datasets.textfile import utf8_lines
from ml.tasks import Task
from ml.tasks.base import Target

# labels.csv rows are short names; a longer line is a broken file, not a dataset.
_MAX_LINE_BYTES = 64 * 1024


def _path_key(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip().replace("\\", "/")).removeprefix("./")


class CsvLabels:
    """labels.csv's rows by file, matched to zip names despite backslashes, './' and NFC/NFD."""

    def __init__(self, where: str, task: Task, options: IngestOptions) -> None:
        self.where = where
        self.task = task
        self.options = options
        self.targets: dict[str, Target] = {}
        self.lines: dict[str, int] = {}

    def add(self, key: str, line: int, target: Target) -> None:
        known = self.targets.get(key)
        if known is None:
            self.targets[key], self.lines[key] = target, line
            return
        try:  # one row per (file, label) pair is a common multilabel layout
            self.targets[key] = self.task.merge_targets(known, target, self.options)
        except SkipExampleError as error:
            raise SkipExampleError(
                error.reason, f"{key!r} is listed on line {self.lines[key]} too: {error.detail}"
            ) from error

    def lookup(self, path: str, prefix: str) -> Target:
        for key in (_path_key(path), _path_key(prefix + path)):
            if key in self.targets:
                return self.targets[key]
        raise missing_target(self.task, self.options, f"the image is not listed in {LABELS_CSV}")

    def report_missing(self, layout: ArchiveLayout, skips: SkipLog) -> None:
        """Skip rows naming no file in the zip (a row naming a non-image is skipped with it)."""
        present = {
            _path_key(name) for path, _ in layout.files for name in (path, layout.prefix + path)
        }
        for key, line in self.lines.items():
            if key not in present:
                skips.add(
                    f"{self.where} line {line}", "missing_file", f"no file {key!r} in the zip"
                )


def labels_csv_columns(where: str, task: Task, options: IngestOptions) -> Columns:
    targets = task.columns(options)
    field = target_field(task)
    header = ",".join(("filename", *targets))
    return Columns(
        names=("filename", *targets),
        fields=("file", *(field for _ in targets)),
        where=where,
        hint=f"{LABELS_CSV} needs a header row {header!r} ({field} names the other column"
        f"{'s' if len(targets) > 1 else ''}).",
    )


def read_labels_csv(
    archive: zipfile.ZipFile,
    layout: ArchiveLayout,
    task: Task,
    options: IngestOptions,
    budget: ByteBudget,
    skips: SkipLog,
) -> CsvLabels:
    """Rows that cannot be used are skipped as "labels.csv line N"."""
    assert layout.labels_csv is not None
    where = layout.prefix + LABELS_CSV
    try:
        data = read_entry(archive, layout.labels_csv, budget, budget.limit)
    except SkipExampleError as error:
        raise IngestError(
            "bad_labels_csv", f"{where} cannot be read: {error.detail}.", status=400
        ) from error
    table = CsvLabels(where, task, options)
    lines = utf8_lines(io.BytesIO(data), where, _MAX_LINE_BYTES)
    columns = labels_csv_columns(where, task, options)
    for line, (filename, *cells) in csv_records(lines, columns, skips):
        try:
            if not filename or not filename.strip():
                raise SkipExampleError("missing_file", "the filename is empty")
            table.add(_path_key(filename), line, task.parse_target(cells, options))
        except SkipExampleError as error:
            skips.add_error(f"{where} line {line}", error)
    return table
