import numpy as np
import pytest

from ml.training.split import stratified_split, validation_fraction


def _single(counts: list[int]) -> np.ndarray:
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(counts)])
    return np.eye(len(counts), dtype=bool)[labels]


def test_single_label_split_is_stratified_and_seeded() -> None:
    labels = _single([50, 30, 20])
    train, val = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    assert labels[val].sum(axis=0).tolist() == [10, 6, 4]
    again_train, again_val = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=4)[1])


def test_rare_labels_get_one_validation_example_but_keep_one_for_training() -> None:
    labels = _single([40, 2, 1])
    train, val = stratified_split(labels, 0.2, seed=0)
    assert labels[val].sum(axis=0).tolist() == [8, 1, 0]
    assert labels[train].sum(axis=0).tolist() == [32, 1, 1]


def test_multilabel_split_covers_each_label_roughly_in_proportion() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random((400, 5)) < np.array([0.5, 0.3, 0.1, 0.05, 0.02])
    labels[~labels.any(axis=1), 0] = True
    train, val = stratified_split(labels, 0.25, seed=0)
    assert len(np.intersect1d(train, val)) == 0
    share = labels[val].sum(axis=0) / labels.sum(axis=0)
    assert np.all(labels[val].sum(axis=0) >= 1)
    assert np.all(np.abs(share - 0.25) < 0.12)
    assert abs(len(val) / 400 - 0.25) < 0.08


def test_validation_fraction_defaults_and_bounds() -> None:
    assert validation_fraction(1000, None) == 0.2
    assert validation_fraction(100_000, None) == pytest.approx(0.05)
    assert validation_fraction(1000, 0.3) == 0.3
    with pytest.raises(ValueError):
        validation_fraction(1000, 1.0)
    with pytest.raises(ValueError):
        stratified_split(_single([1]), 0.2, seed=0)
