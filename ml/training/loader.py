"""Batches from cached inputs: shuffled per epoch from a seed, resumable in the middle of one.

Loaders run in the training process, not in worker processes: inputs are already decoded or
tokenized in memory-mapped caches, so building a batch is a gather plus a few tensor ops, and
extra processes would only compete with the model for the CPU's cores.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

Inputs = torch.Tensor | dict[str, torch.Tensor]


@dataclass
class Batch:
    inputs: Inputs
    targets: torch.Tensor
    index: np.ndarray  # the rows' positions in the dataset


class Loader(ABC):
    """Batches over `indices` (positions in a cached dataset) with their `targets`.

    Training loaders reshuffle every epoch from (seed, epoch) and drop the last partial batch
    (a batch of one breaks BatchNorm and adds a noisy step). Augmentation draws from the same
    generator, so its state after batch b is all a checkpoint needs to replay the rest.
    """

    def __init__(
        self,
        indices: np.ndarray,
        targets: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.targets = targets
        self.batch_size = batch_size
        self.train = train
        self.device = device
        self.seed = seed
        self.generator = torch.Generator()

    def __len__(self) -> int:
        n = len(self.indices)
        if self.train and n >= self.batch_size:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def batches(
        self, epoch: int = 0, start: int = 0, rng_state: torch.Tensor | None = None
    ) -> Iterator[Batch]:
        """Batches start.. of `epoch`; rng_state is the generator's state saved after start-1."""
        order = self._order(epoch)
        if rng_state is not None:
            self.generator.set_state(rng_state)
        for rows in order[start:]:
            targets = self.targets[torch.from_numpy(rows)].to(self.device, non_blocking=True)
            yield Batch(self._inputs(rows), targets, rows)

    def _order(self, epoch: int) -> list[np.ndarray]:
        if not self.train:
            return self._eval_order()
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        shuffled = self.indices[torch.randperm(len(self.indices), generator=self.generator).numpy()]
        return self._train_order(shuffled)[: len(self)]

    def _eval_order(self) -> list[np.ndarray]:
        size = self.batch_size
        return [self.indices[i : i + size] for i in range(0, len(self.indices), size)]

    def _train_order(self, shuffled: np.ndarray) -> list[np.ndarray]:
        size = self.batch_size
        return [shuffled[i : i + size] for i in range(0, len(shuffled), size)]

    @abstractmethod
    def _inputs(self, rows: np.ndarray) -> Inputs:
        """The model inputs for these dataset rows, on self.device."""
