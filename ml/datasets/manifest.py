"""The dataset manifest and its canonical bytes, whose sha256 names the dataset."""

import hashlib
import json
from collections.abc import Iterable

from ml.datasets.records import Candidate

FORMAT = "hone.dataset/1"


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, ASCII only: the same dataset always has the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build_manifest(task: str, multilabel: bool, examples: Iterable[Candidate]) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    labels: set[str] = set()
    for example in examples:
        row: dict[str, object] = {"labels": list(example.labels), "source": example.source}
        if example.file is not None:
            row["file"] = example.file
        if example.text is not None:
            row["text"] = example.text
        rows.append(row)
        labels.update(example.labels)
    return {
        "format": FORMAT,
        "task": task,
        "multilabel": multilabel,
        "labels": sorted(labels),
        "examples": rows,
    }


def encode_manifest(manifest: dict[str, object]) -> tuple[bytes, str]:
    """The bytes manifest.json holds and their sha256, which is the dataset's id."""
    payload = canonical_json(manifest)
    return payload, hashlib.sha256(payload).hexdigest()
