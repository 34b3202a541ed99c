"""Validation examples for choosing a new version's serving runtime (prepare_serving): the
rows the engine validated on, from its own split function (same seed, same fraction)."""

from __future__ import annotations

from ml.training.examples import load_job_data
from ml.training.spec import NullHooks, TrainSpec

MAX_EXAMPLES = 256


def serving_inputs(
    spec: TrainSpec, limit: int = MAX_EXAMPLES
) -> tuple[list[bytes] | list[str], list[int] | None]:
    """(image bytes or texts, their label indices where the targets are single labels;
    None for multi-label and regression data: agreement with torch then stands in)."""
    data = load_job_data(spec, NullHooks())  # its warnings were reported in training
    rows = [int(i) for i in data.val_rows[:limit]]
    examples = [data.val_set.examples[i] for i in rows]
    inputs: list[bytes] | list[str]
    if data.task.modality == "image":
        inputs = [e.file.read_bytes() for e in examples if e.file is not None]
    else:
        inputs = [e.text or "" for e in examples]
    targets = data.val_targets
    if targets.ndim != 1 or targets.is_floating_point():
        return inputs, None
    return inputs, [int(targets[i]) for i in rows]
