"""Candidates from an image zip: one folder per label, or a labels.csv at the root."""

import dataclasses
import hashlib
from pathlib import Path

from ml.datasets.archive import ByteBudget, open_archive, read_entry
from ml.datasets.formats import SUPPORTED_IMAGES, is_image_name
from ml.datasets.images import verify_image
from ml.datasets.labels_csv import CsvLabels, read_labels_csv
from ml.datasets.layout import ArchiveLayout, folder_label, plan_layout
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.records import Candidate, SkipExampleError, SkipLog
from ml.datasets.task import missing_target, task_of
from ml.tasks import Task
from ml.tasks.base import Target


def folder_target(task: Task, options: IngestOptions, folder: str) -> Target:
    """A folder name is one whole target cell: "a|b/" is one label even in multilabel mode."""
    return task.parse_target([folder], dataclasses.replace(options, multilabel=False))


def _target(
    path: str, layout: ArchiveLayout, table: CsvLabels | None, task: Task, options: IngestOptions
) -> Target:
    if table is not None:
        return table.lookup(path, layout.prefix)
    folder = folder_label(path)
    if folder is None:
        raise missing_target(
            task,
            options,
            "the image is not in a label folder: put it in a folder named after its label",
        )
    return folder_target(task, options, folder)


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
    task = task_of(options)
    columns = task.columns(options)
    budget = ByteBudget(limits.max_uncompressed_bytes)
    candidates = []
    with open_archive(upload, limits) as archive:
        layout = plan_layout(archive.infolist())
        table = None
        if layout.labels_csv is not None:
            table = read_labels_csv(archive, layout, task, options, budget, skips)
        seen: set[str] = set()
        for path, info in layout.files:
            try:
                if path in seen:
                    # A zip may hold several entries of one name (`zip` appending to an
                    # archive makes them); reading all would make one file several examples.
                    raise SkipExampleError(
                        "duplicate_name",
                        "the zip has an earlier entry with this same name; only the first is "
                        "read (rename the files or rebuild the zip)",
                    )
                seen.add(path)
                if not is_image_name(path):
                    raise SkipExampleError(
                        "unsupported_type", f"only {SUPPORTED_IMAGES} files are read"
                    )
                target = _target(path, layout, table, task, options)
                data = read_entry(archive, info, budget, limits.max_file_bytes)
                image = verify_image(data, limits.max_image_pixels)
            except SkipExampleError as error:
                skips.add_error(info.filename, error)
                continue
            digest = hashlib.sha256(data).hexdigest()
            candidates.append(
                Candidate(
                    source=info.filename,
                    target=target,
                    key=digest,
                    file=_store_image(data, digest, image.extension, dataset_dir),
                    min_side=min(image.width, image.height),
                    columns=columns,
                )
            )
        if table is not None:
            table.report_missing(layout, skips)
    return candidates
