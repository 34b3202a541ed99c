"""Validation examples for choosing a new version's serving runtime (prepare_serving).

The engine does not hand back its validation rows, so they are rebuilt from the same pure
functions it splits with (same seed, same fraction). Were the two ever to differ, the runtime
choice would only compare runtimes on a few training examples: tolerable, never wrong.
"""

from __future__ import annotations

from ml.datasets.store import Example, load_dataset
from ml.training.spec import TrainSpec
from ml.training.split import stratified_split, validation_fraction
from ml.training.targets import encode_targets, label_matrix

MAX_EXAMPLES = 256


def _content(example: Example) -> bytes | str:
    if example.file is not None:
        return example.file.read_bytes()
    return example.text or ""


def serving_inputs(
    spec: TrainSpec, labels: list[str], limit: int = MAX_EXAMPLES
) -> tuple[list[bytes] | list[str], list[int] | None]:
    """(inputs, label indices into `labels`; None for multi-label data)."""
    if spec.validation_dataset_dir is not None:
        dataset = load_dataset(spec.validation_dataset_dir)
        rows = list(range(len(dataset.examples)))
    else:
        dataset = load_dataset(spec.dataset_dir)
        targets = encode_targets(dataset.examples, dataset.labels, dataset.multilabel)
        fraction = validation_fraction(len(targets), spec.validation_split)
        matrix = label_matrix(targets, len(dataset.labels))
        rows = [int(i) for i in stratified_split(matrix, fraction, spec.seed)[1]]
    examples = [dataset.examples[i] for i in rows[:limit]]
    inputs = [_content(e) for e in examples]
    if dataset.multilabel:
        return inputs, None  # type: ignore[return-value]
    index = {label: i for i, label in enumerate(labels)}
    return inputs, [index[e.labels[0]] for e in examples]  # type: ignore[return-value]
