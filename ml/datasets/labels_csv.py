"""labels.csv in an image zip: which labels each listed file has."""

import io
import unicodedata
import zipfile

from ml.datasets.archive import ByteBudget, read_entry
from ml.datasets.errors import IngestError
from ml.datasets.labels import parse_labels
from ml.datasets.layout import LABELS_CSV, ArchiveLayout
from ml.datasets.options import IngestOptions
from ml.datasets.records import SkipExampleError, SkipLog
from ml.datasets.tabular import Columns, csv_records
from ml.datasets.textfile import utf8_lines

# labels.csv rows are short names; a longer line is a broken file, not a dataset.
_MAX_LINE_BYTES = 64 * 1024


def _path_key(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip().replace("\\", "/")).removeprefix("./")


class CsvLabels:
    """labels.csv's rows by file, matched to zip names despite backslashes, './' and NFC/NFD."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.labels: dict[str, tuple[str, ...]] = {}
        self.lines: dict[str, int] = {}

    def add(self, key: str, line: int, labels: tuple[str, ...], multilabel: bool) -> None:
        known = self.labels.get(key)
        if known is None:
            self.labels[key], self.lines[key] = labels, line
        elif multilabel:  # one row per (file, label) pair is a common multilabel layout
            self.labels[key] = tuple(sorted({*known, *labels}))
        elif labels != known:
            raise SkipExampleError(
                "invalid_label",
                f"{key!r} already has label {known[0]!r} (line {self.lines[key]}); "
                "use multilabel=true to give an image several labels",
            )

    def lookup(self, path: str, prefix: str) -> tuple[str, ...]:
        for key in (_path_key(path), _path_key(prefix + path)):
            if key in self.labels:
                return self.labels[key]
        raise SkipExampleError("missing_label", f"the image is not listed in {LABELS_CSV}")

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


def read_labels_csv(
    archive: zipfile.ZipFile,
    layout: ArchiveLayout,
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
    columns = Columns(
        names=("filename", options.label_column),
        fields=("file", "label_column"),
        where=where,
        hint=f"{LABELS_CSV} needs a header row 'filename,{options.label_column}' "
        "(label_column names the label column).",
    )
    table = CsvLabels(where)
    lines = utf8_lines(io.BytesIO(data), where, _MAX_LINE_BYTES)
    for line, (filename, label_value) in csv_records(lines, columns, skips):
        try:
            if not filename or not filename.strip():
                raise SkipExampleError("missing_file", "the filename is empty")
            labels = parse_labels(label_value, options.multilabel)
            table.add(_path_key(filename), line, labels, options.multilabel)
        except SkipExampleError as error:
            skips.add_error(f"{where} line {line}", error)
    return table
