"""The classical candidate's featurizers: fitted on a job's training data, they give every
example's feature row, the model those rows feed, and what its artifact must carry."""

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from ml.classical.model import LinearOnFeatures
from ml.classical.pixels import fit_grid, grid_pixels, image_files
from ml.classical.tfidf import fit_vectorizer, preprocessing_of, tfidf_rows, vectorizer_files
from ml.datasets.store import StoredDataset
from ml.inference.pixels import PixelGrid, to_features


class ClassicalFeaturizer(ABC):
    kind: str  # "pixels" | "tfidf"
    description: str  # what the candidate is, for a person: "linear model on 8x8 grey pixels"
    num_features: int
    # Whether the probe scales each feature to unit spread: right for pixels (0.801 against
    # 0.788 at 16x16), wrong for TF-IDF (tweets: 0.617 against 0.653 unscaled, which matches
    # scikit-learn's LogisticRegressionCV; bench/RESULTS.md).
    scale_features = True

    @abstractmethod
    def features(self, dataset: StoredDataset) -> torch.Tensor:
        """float32 [len(dataset.examples), num_features], in example order."""

    @abstractmethod
    def preprocessing(self) -> dict[str, Any]:
        """The artifact config's preprocessing block (its "kind" says which featurizer)."""

    def artifact_files(self) -> dict[str, bytes]:
        """Files the artifact needs besides weights and config, by relative path."""
        return {}

    def build_model(self, num_outputs: int) -> torch.nn.Module:
        """The model over these features; its head (``get_classifier()``) is install_head's."""
        return LinearOnFeatures(self.num_features, num_outputs)


class PixelFeaturizer(ClassicalFeaturizer):
    kind = "pixels"

    def __init__(self, grid: PixelGrid, dataset_dir: Path, pixels: np.ndarray) -> None:
        self.grid = grid
        self.num_features = grid.num_features
        colours = "grey" if grid.grey else "RGB"
        self.description = f"linear model on {grid.side}x{grid.side} {colours} pixels"
        # The fitted dataset's pixels, decoded once while fitting.
        self._dataset_dir, self._pixels = dataset_dir, pixels

    @classmethod
    def fit(cls, dataset: StoredDataset, fit_rows: np.ndarray) -> "PixelFeaturizer":
        grid, pixels = fit_grid(dataset, fit_rows)
        return cls(grid, dataset.path, pixels)

    def features(self, dataset: StoredDataset) -> torch.Tensor:
        if dataset.path == self._dataset_dir:
            pixels = self._pixels
        else:
            pixels = grid_pixels(image_files(dataset), self.grid)
        return torch.from_numpy(to_features(pixels))

    def preprocessing(self) -> dict[str, Any]:
        return self.grid.to_preprocessing()


class TfidfFeaturizer(ClassicalFeaturizer):
    kind = "tfidf"

    scale_features = False

    def __init__(self, vectorizer: TfidfVectorizer) -> None:
        self.vectorizer = vectorizer
        self.num_features = len(vectorizer.vocabulary_)
        self.description = f"TF-IDF (1-2 grams, {self.num_features:,} terms) + linear model"

    @classmethod
    def fit(cls, dataset: StoredDataset, fit_rows: np.ndarray) -> "TfidfFeaturizer":
        texts = _texts(dataset)
        return cls(fit_vectorizer([texts[int(i)] for i in fit_rows]))

    def features(self, dataset: StoredDataset) -> torch.Tensor:
        return torch.from_numpy(tfidf_rows(self.vectorizer, _texts(dataset)))

    def preprocessing(self) -> dict[str, Any]:
        return preprocessing_of(self.vectorizer)

    def artifact_files(self) -> dict[str, bytes]:
        return vectorizer_files(self.vectorizer)


def _texts(dataset: StoredDataset) -> list[str]:
    return [example.text or "" for example in dataset.examples]


def classical_candidate(
    modality: str, train_set: StoredDataset, fit_rows: np.ndarray
) -> ClassicalFeaturizer:
    """The featurizer of ``modality`` fitted on ``fit_rows`` of ``train_set`` (indices into
    its examples): the pixel grid's side and colours, or the TF-IDF vocabulary. Neither looks
    at targets, so a head cross-fitted on those same rows stays honest."""
    if len(fit_rows) == 0:
        raise ValueError("a classical featurizer needs at least one example to fit on")
    if modality == "image":
        return PixelFeaturizer.fit(train_set, fit_rows)
    if modality == "text":
        return TfidfFeaturizer.fit(train_set, fit_rows)
    raise ValueError(f"no classical candidate for {modality!r} inputs")
