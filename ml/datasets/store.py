"""Reading a stored dataset back (the trainer's side of docs/architecture.md)."""

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ml.datasets.manifest import FORMAT

# Only names ingest writes; anything else in a manifest means it was not written by us.
_FILE_ENTRY = re.compile(r"files/[0-9a-f]{64}\.[a-z]{3,4}")


class DatasetFormatError(ValueError):
    """A dataset directory that is damaged or was not written by ``ingest``."""


@dataclass(frozen=True)
class Example:
    labels: tuple[str, ...]
    text: str | None
    file: Path | None
    source: str


@dataclass(frozen=True)
class StoredDataset:
    path: Path
    task: str
    multilabel: bool
    labels: tuple[str, ...]
    examples: tuple[Example, ...]


def _example(root: Path, row: dict[str, object]) -> Example:
    file = row.get("file")
    text = row.get("text")
    labels = row.get("labels")
    if file is not None and not (isinstance(file, str) and _FILE_ENTRY.fullmatch(file)):
        raise DatasetFormatError(f"unexpected file entry {file!r}")
    if text is not None and not isinstance(text, str):
        raise DatasetFormatError("an example's text is not a string")
    if (file is None) == (text is None):
        raise DatasetFormatError("an example needs exactly one of file and text")
    if not isinstance(labels, list) or not labels:
        raise DatasetFormatError("an example has no labels")
    return Example(
        labels=tuple(str(label) for label in labels),
        text=text,
        file=root / file if isinstance(file, str) else None,
        source=str(row.get("source", "")),
    )


def load_dataset(path: Path) -> StoredDataset:
    """Read ``path/manifest.json``, checking that its sha256 is the directory's name."""
    payload = (path / "manifest.json").read_bytes()
    if hashlib.sha256(payload).hexdigest() != path.name:
        raise DatasetFormatError(f"{path}: manifest.json does not match the dataset's sha256")
    manifest = json.loads(payload)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetFormatError(f"{path}: not a {FORMAT} dataset")
    return StoredDataset(
        path=path,
        task=str(manifest["task"]),
        multilabel=bool(manifest["multilabel"]),
        labels=tuple(manifest["labels"]),
        examples=tuple(_example(path, row) for row in manifest["examples"]),
    )
