"""Which examples a job trains on and which it validates on."""

from dataclasses import dataclass

import numpy as np
import torch

from ml.datasets.store import StoredDataset, load_dataset
from ml.tasks import Task, get_task
from ml.training.spec import TrainHooks, TrainSpec
from ml.training.split import validation_fraction

# Fewer validation examples than this (or than two per label) make selection a coin toss.
_SMALL_VALIDATION = 10


@dataclass
class JobData:
    """The examples a job trains and validates on, as rows into cached inputs."""

    task: Task
    names: list[str]  # labels, or target names: one per output of the head
    train_set: StoredDataset
    val_set: StoredDataset  # the training set itself unless a validation dataset was given
    targets: torch.Tensor
    val_targets: torch.Tensor
    train_rows: np.ndarray
    val_rows: np.ndarray

    @property
    def separate_validation(self) -> bool:
        return self.val_set is not self.train_set


def load_job_data(spec: TrainSpec, hooks: TrainHooks) -> JobData:
    """Load the job's dataset(s) and decide which rows train and which validate."""
    train_set = load_dataset(spec.dataset_dir)
    task = get_task(train_set.task)
    if task.modality != spec.backbone.modality:
        raise ValueError(f"backbone {spec.backbone.id!r} cannot learn a {task.name} task")
    names = task.names(train_set)
    targets = task.encode(train_set, names)
    if spec.validation_dataset_dir is not None:
        val_set = load_dataset(spec.validation_dataset_dir)
        if val_set.task != train_set.task or val_set.multilabel != train_set.multilabel:
            raise ValueError("the validation dataset is not of the training dataset's kind")
        val_targets = task.encode(val_set, names)
        split = JobData(
            task,
            names,
            train_set,
            val_set,
            targets,
            val_targets,
            np.arange(len(targets)),
            np.arange(len(val_targets)),
        )
    else:
        fraction = validation_fraction(len(targets), spec.validation_split)
        train_rows, val_rows = task.split(targets, fraction, spec.seed)
        split = JobData(task, names, train_set, train_set, targets, targets, train_rows, val_rows)
    if len(split.val_rows) < max(_SMALL_VALIDATION, 2 * len(names)):
        hooks.event(
            "warn",
            f"the validation set has only {len(split.val_rows)} examples: its metrics are noisy",
            data={"num_val": len(split.val_rows)},
        )
    return split
