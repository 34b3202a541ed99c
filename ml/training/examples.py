"""Which examples a job trains on and which it validates on."""

from dataclasses import dataclass

import numpy as np
import torch

from ml.datasets.store import StoredDataset, load_dataset
from ml.training.outcome import TASK_OF
from ml.training.spec import TrainHooks, TrainSpec
from ml.training.split import stratified_split, validation_fraction
from ml.training.targets import encode_targets, label_matrix

# Fewer validation examples than this (or than two per label) make selection a coin toss.
_SMALL_VALIDATION = 10


@dataclass
class JobData:
    """The examples a job trains and validates on, as rows into cached inputs."""

    train_set: StoredDataset
    val_set: StoredDataset  # the training set itself unless a validation dataset was given
    targets: torch.Tensor
    val_targets: torch.Tensor
    train_rows: np.ndarray
    val_rows: np.ndarray


def load_job_data(spec: TrainSpec, hooks: TrainHooks) -> JobData:
    """Load the job's dataset(s) and decide which rows train and which validate."""
    train_set = load_dataset(spec.dataset_dir)
    if train_set.task != TASK_OF[spec.backbone.modality]:
        raise ValueError(f"backbone {spec.backbone.id!r} cannot learn a {train_set.task} task")
    labels, multilabel = train_set.labels, train_set.multilabel
    targets = encode_targets(train_set.examples, labels, multilabel)
    if spec.validation_dataset_dir is not None:
        val_set = load_dataset(spec.validation_dataset_dir)
        if val_set.task != train_set.task or val_set.multilabel != multilabel:
            raise ValueError("the validation dataset is not of the training dataset's kind")
        val_targets = encode_targets(val_set.examples, labels, multilabel)
        split = JobData(
            train_set,
            val_set,
            targets,
            val_targets,
            np.arange(len(targets)),
            np.arange(len(val_targets)),
        )
    else:
        fraction = validation_fraction(len(targets), spec.validation_split)
        rows = stratified_split(label_matrix(targets, len(labels)), fraction, spec.seed)
        split = JobData(train_set, train_set, targets, targets, *rows)
    if len(split.val_rows) < max(_SMALL_VALIDATION, 2 * len(labels)):
        hooks.event(
            "warn",
            f"the validation set has only {len(split.val_rows)} examples: its metrics are noisy",
            data={"num_val": len(split.val_rows)},
        )
    return split
