"""The dataset manifest and its canonical bytes, whose sha256 names the dataset."""

import hashlib
import json
from collections.abc import Sequence

from ml.datasets.inputs import input_stats
from ml.datasets.options import IngestOptions
from ml.datasets.records import Candidate
from ml.tasks import Task

FORMAT = "hone.dataset/1"


def canonical_json(value: object) -> bytes:
    """Sorted keys, no whitespace, ASCII only: the same dataset always has the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def build_manifest(
    task: Task, options: IngestOptions, examples: Sequence[Candidate]
) -> dict[str, object]:
    """format, task, the task's header fields (classification: multilabel and labels;
    regression: multilabel false and targets), the inputs' statistics a training plan uses
    (ml/datasets/inputs.py) and one row per example with its target."""
    rows: list[dict[str, object]] = []
    for example in examples:
        row: dict[str, object] = {**task.row_target(example.target), "source": example.source}
        if example.file is not None:
            row["file"] = example.file
        if example.text is not None:
            row["text"] = example.text
        rows.append(row)
    return {
        "format": FORMAT,
        "task": task.name,
        **task.manifest_header(list(examples), options),
        "inputs": input_stats(examples).to_dict(),
        "examples": rows,
    }


def encode_manifest(manifest: dict[str, object]) -> tuple[bytes, str]:
    """The bytes manifest.json holds and their sha256, which is the dataset's id."""
    payload = canonical_json(manifest)
    return payload, hashlib.sha256(payload).hexdigest()
