"""The validation split: seeded and stratified, so every label is measured where it can be."""

import numpy as np

DEFAULT_FRACTION = 0.2
# Past this many validation examples the estimate is precise enough; the rest trains.
DEFAULT_MAX_VALIDATION = 5000


def validation_fraction(num_examples: int, requested: float | None) -> float:
    """The client's fraction, or the service's default for a dataset of this size."""
    if requested is not None:
        if not 0 < requested < 1:
            raise ValueError("validation_split must be between 0 and 1")
        return requested
    return min(DEFAULT_FRACTION, DEFAULT_MAX_VALIDATION / max(num_examples, 1))


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) example indices for a boolean [N, K] label matrix.

    A greedy form of iterative stratification (Sechidis et al., 2011) that also covers the
    single-label case: labels are served rarest first, and each label sends its examples to
    validation until it has its share (at least one), never taking a label's last training
    example. Multi-label examples count towards every label they carry.
    """
    num_examples, num_labels = labels.shape
    if num_examples < 2:
        raise ValueError("at least 2 examples are needed to hold some out for validation")
    order = np.random.default_rng(seed).permutation(num_examples)
    counts = labels.sum(axis=0)
    wanted = fraction * counts.astype(np.float64)
    in_val = np.zeros(num_labels, dtype=np.int64)
    assigned = np.zeros(num_examples, dtype=bool)
    to_val = np.zeros(num_examples, dtype=bool)
    for label in np.argsort(counts, kind="stable"):
        for i in order[labels[order, label]]:
            if assigned[i]:
                continue
            assigned[i] = True
            carried = labels[i]
            needed = wanted[label] - in_val[label] >= 0.5 or in_val[label] == 0
            if needed and np.all(in_val[carried] + 1 < counts[carried]):
                to_val[i] = True
                in_val[carried] += 1
    if not to_val.any():
        # Every label has a single example: hold one out anyway so there is something to measure.
        to_val[order[0]] = True
    return np.flatnonzero(~to_val), np.flatnonzero(to_val)
