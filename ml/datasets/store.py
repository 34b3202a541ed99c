"""Reading a stored dataset back (the trainer's side of docs/architecture.md)."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.datasets.inputs import InputStats
from ml.datasets.manifest import FORMAT
from ml.tasks import Task, UnknownTask, get_task
from ml.tasks.base import Target

# Only names ingest writes; anything else in a manifest means it was not written by us.
_FILE_ENTRY = re.compile(r"files/[0-9a-f]{64}\.[a-z]{3,4}")


class DatasetFormatError(ValueError):
    """A dataset directory that is damaged or was not written by ``ingest``."""


@dataclass(frozen=True)
class Example:
    target: Target  # labels (str) for classification, one float per target for regression
    text: str | None
    file: Path | None
    source: str

    @property
    def labels(self) -> Target:
        """Classification's name for the target."""
        return self.target


@dataclass(frozen=True)
class StoredDataset:
    path: Path
    task: str
    multilabel: bool
    labels: tuple[str, ...]  # label names (classification) or target names (regression)
    examples: tuple[Example, ...]
    inputs: InputStats = field(default_factory=InputStats)  # measured at ingest; empty: older


def _example(root: Path, task: Task, row: dict[str, Any], width: int | None) -> Example:
    file = row.get("file")
    text = row.get("text")
    if file is not None and not (isinstance(file, str) and _FILE_ENTRY.fullmatch(file)):
        raise DatasetFormatError(f"unexpected file entry {file!r}")
    if text is not None and not isinstance(text, str):
        raise DatasetFormatError("an example's text is not a string")
    if (file is None) == (text is None):
        raise DatasetFormatError("an example needs exactly one of file and text")
    try:
        target = task.read_target(row)
    except ValueError as error:
        raise DatasetFormatError(f"an example's target is unusable: {error}") from error
    if width is not None and len(target) != width:
        raise DatasetFormatError(f"an example has {len(target)} targets, not {width}")
    return Example(
        target=target,
        text=text,
        file=root / file if isinstance(file, str) else None,
        source=str(row.get("source", "")),
    )


def manifest_names(manifest: dict[str, Any]) -> list[str]:
    """A regression manifest's "targets", or a classification manifest's "labels"."""
    names = manifest.get("targets", manifest.get("labels"))
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise DatasetFormatError("the manifest's labels or targets are not a list of names")
    return names


def load_dataset(path: Path) -> StoredDataset:
    """Read ``path/manifest.json``, checking that its sha256 is the directory's name."""
    payload = (path / "manifest.json").read_bytes()
    if hashlib.sha256(payload).hexdigest() != path.name:
        raise DatasetFormatError(f"{path}: manifest.json does not match the dataset's sha256")
    manifest = json.loads(payload)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetFormatError(f"{path}: not a {FORMAT} dataset")
    try:
        task = get_task(str(manifest["task"]))
    except UnknownTask as error:
        raise DatasetFormatError(f"{path}: {error.args[0]}") from None
    names = manifest_names(manifest)
    # A regression manifest names its targets, and every row has one number per target.
    width = len(names) if "targets" in manifest else None
    return StoredDataset(
        path=path,
        task=task.name,
        multilabel=bool(manifest.get("multilabel", False)),
        labels=tuple(names),
        examples=tuple(_example(path, task, row, width) for row in manifest["examples"]),
        inputs=InputStats.from_dict(manifest.get("inputs")),
    )
