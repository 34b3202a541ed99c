"""Candidates from an image zip: one folder per label, or a labels.csv at the root."""

import hashlib
import io
import unicodedata
import zipfile
from pathlib import Path

from ml.datasets.archive import ByteBudget, open_archive, read_entry
from ml.datasets.errors import IngestError
from ml.datasets.formats import is_image_name
from ml.datasets.images import verify_image
from ml.datasets.labels import clean_label, parse_labels
from ml.datasets.layout import LABELS_CSV, ArchiveLayout, folder_label, plan_layout
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.tabular import Columns, csv_records
from ml.datasets.textfile import utf8_lines

# labels.csv rows are short names; a longer line is a broken file, not a dataset.
_MAX_LABELS_CSV_LINE = 64 * 1024
_SUPPORTED = "JPEG, PNG, WebP, BMP, GIF and TIFF"


def _path_key(name: str) -> str:
    """Match labels.csv names to zip names despite backslashes, './' and NFC/NFD."""
    return unicodedata.normalize("NFC", name.strip().replace("\\", "/")).removeprefix("./")


class _CsvLabels:
    """labels.csv rows by file; remembers which rows matched a file in the zip."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.labels: dict[str, tuple[str, ...]] = {}
        self.lines: dict[str, int] = {}
        self.used: set[str] = set()

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
                self.used.add(key)
                return self.labels[key]
        raise SkipExampleError("missing_label", f"the image is not listed in {LABELS_CSV}")

    def report_unused(self, skips: SkipLog) -> None:
        for key, line in self.lines.items():
            if key not in self.used:
                skips.add(
                    f"{self.where} line {line}", "missing_file", f"no file {key!r} in the zip"
                )


def _read_labels_csv(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    where: str,
    options: IngestOptions,
    budget: ByteBudget,
    skips: SkipLog,
) -> _CsvLabels:
    try:
        data = read_entry(archive, info, budget, budget.limit)
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
    table = _CsvLabels(where)
    lines = utf8_lines(io.BytesIO(data), where, _MAX_LABELS_CSV_LINE)
    for line, (filename, label_value) in csv_records(lines, columns, skips):
        try:
            if not filename or not filename.strip():
                raise SkipExampleError("missing_file", "the filename is empty")
            labels = parse_labels(label_value, options.multilabel)
            table.add(_path_key(filename), line, labels, options.multilabel)
        except SkipExampleError as error:
            skips.add_error(f"{where} line {line}", error)
    return table


def _labels(path: str, layout: ArchiveLayout, table: _CsvLabels | None) -> tuple[str, ...]:
    if table is not None:
        return table.lookup(path, layout.prefix)
    folder = folder_label(path)
    if folder is None:
        raise SkipExampleError(
            "missing_label",
            "the image is not in a label folder: put it in a folder named after its label",
        )
    return (clean_label(folder),)


def _store_image(data: bytes, digest: str, extension: str, dataset_dir: Path) -> str:
    """Write verified bytes under their content hash; returns the manifest's file entry."""
    name = f"files/{digest}.{extension}"
    target = dataset_dir / name
    if not target.exists():  # identical bytes uploaded twice are stored once
        target.write_bytes(data)
    return name


def collect_images(
    upload: Path, options: IngestOptions, limits: IngestLimits, dataset_dir: Path, skips: SkipLog
) -> list[Candidate]:
    """Verified image candidates; their bytes are written to ``dataset_dir/files/``."""
    (dataset_dir / "files").mkdir(exist_ok=True)
    budget = ByteBudget(limits.max_uncompressed_bytes)
    candidates = []
    with open_archive(upload, limits) as archive:
        layout = plan_layout(archive.infolist())
        table = None
        if layout.labels_csv is not None:
            where = layout.prefix + LABELS_CSV
            table = _read_labels_csv(archive, layout.labels_csv, where, options, budget, skips)
        for path, info in layout.files:
            try:
                if not is_image_name(path):
                    raise SkipExampleError("unsupported_type", f"only {_SUPPORTED} files are read")
                labels = _labels(path, layout, table)
                data = read_entry(archive, info, budget, limits.max_file_bytes)
                image = verify_image(data, limits.max_image_pixels)
            except SkipExampleError as error:
                skips.add_error(info.filename, error)
                continue
            digest = hashlib.sha256(data).hexdigest()
            candidates.append(
                Candidate(
                    source=info.filename,
                    labels=labels,
                    key=digest,
                    file=_store_image(data, digest, image.extension, dataset_dir),
                    min_side=min(image.width, image.height),
                )
            )
        if table is not None:
            table.report_unused(skips)
    return candidates
