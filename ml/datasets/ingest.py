"""Turning an upload into an immutable, content-addressed dataset directory."""

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.datasets.audit import audit
from ml.datasets.image_source import collect_images
from ml.datasets.manifest import build_manifest, encode_manifest
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.preflight import preflight
from ml.datasets.records import SkipLog
from ml.datasets.store import manifest_names
from ml.datasets.task import task_of
from ml.datasets.text_source import collect_texts


@dataclass(frozen=True)
class IngestResult:
    sha256: str
    path: Path  # datasets_root / sha256
    manifest: dict[str, Any]  # as in docs/architecture.md
    report: dict[str, Any]  # the data-quality audit
    names: tuple[str, ...]  # label names (classification) or target names (regression)


def _freeze(directory: Path) -> None:
    """Files read-only; directories stay writable by the owner so a dataset can be deleted."""
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o444)
    directory.chmod(0o755)  # mkdtemp made it private to us


def _publish(work: Path, target: Path) -> None:
    if target.exists():
        return  # same sha256, same manifest, same file bytes: the dataset is already stored
    try:
        os.replace(work, target)
    except OSError:
        if not target.is_dir():
            raise
        # another worker published the identical dataset between our check and our move


def ingest(
    upload: Path, options: IngestOptions, limits: IngestLimits, datasets_root: Path, scratch: Path
) -> IngestResult:
    """Unpack, decode, audit and store an upload; raises IngestError for problems with it.

    Everything is built in a temporary directory under ``scratch`` (which must be on the same
    filesystem as ``datasets_root``) and moved to ``datasets_root/<sha256>`` in one rename, so
    a failure at any point leaves nothing in ``datasets_root``.
    """
    kind = preflight(upload, options, limits)
    task = task_of(options)
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=scratch))
    try:
        skips = SkipLog()
        if kind == "image_zip":
            candidates = collect_images(upload, options, limits, work, skips)
        else:
            candidates = collect_texts(upload, kind, options, limits, skips)
        kept, report = audit(task, candidates, skips, limits)
        manifest = build_manifest(task, options, kept)
        report["inputs"] = manifest["inputs"]
        payload, sha256 = encode_manifest(manifest)
        (work / "manifest.json").write_bytes(payload)
        _freeze(work)
        datasets_root.mkdir(parents=True, exist_ok=True)
        target = datasets_root / sha256
        _publish(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = tuple(manifest_names(manifest))
    return IngestResult(sha256=sha256, path=target, manifest=manifest, report=report, names=names)
