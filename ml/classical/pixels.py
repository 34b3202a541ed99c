"""Raw-pixel features of a stored image dataset, through the serving preprocessor's own steps
(ml/inference/pixels.py), and the grid a dataset's images call for.

The grid is grey when every training image is (R = G = B), else RGB. Its side is the median
shorter side of the training images, at least ``MIN_SIDE`` and at most ``MAX_SIDE``, and no
more than ``MAX_FEATURES`` values per image allow (grey 32 x 32, RGB 18 x 18): a linear model
gains little from more pixels, while the probe's cost grows with every one. Measured on 1,000
Fashion-MNIST images as colour JPEGs: 16 x 16 RGB scored 80.1% on held-out images in 24 s of
probe fitting, 32 x 32 RGB 79.2% in 55 s.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from ml.datasets.formats import PIL_FORMATS
from ml.datasets.store import StoredDataset
from ml.device import usable_cpus
from ml.inference.pixels import PixelGrid, decode_for_grid, downsample

MAX_SIDE = 32
MIN_SIDE = 4
MAX_FEATURES = 1024
# Stored images passed the dataset's own pixel cap at ingest; serving applies its cap.
_NO_CAP = 1 << 62
_T = TypeVar("_T")


def image_files(dataset: StoredDataset) -> list[Path]:
    """Every example's stored image, in example order."""
    files = [example.file for example in dataset.examples]
    if any(file is None for file in files):
        raise ValueError(f"{dataset.path}: an image dataset has an example without a file")
    return [file for file in files if file is not None]


def _parallel(function: Callable[[Path], _T], files: Sequence[Path]) -> list[_T]:
    # Pillow releases the GIL while decoding and resizing: threads use every core.
    with ThreadPoolExecutor(usable_cpus()) as pool:
        return list(pool.map(function, files))


def _min_side(path: Path) -> int:
    with Image.open(path, formats=PIL_FORMATS) as image:  # the header only
        return min(image.size)


def grid_side(median_min_side: float, channels: int) -> int:
    """The grid's side for images whose median shorter side is ``median_min_side``."""
    budget = int((MAX_FEATURES / channels) ** 0.5)
    return max(MIN_SIDE, min(int(median_min_side), MAX_SIDE, budget))


def _equal_bands(image: Image.Image) -> bool:
    if image.mode == "L":
        return True
    pixels = np.asarray(image)
    return bool(
        (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    )


def _scan(files: Sequence[Path], grid: PixelGrid) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, side, side, 3] pixels on the RGB ``grid``, bool [N]: whether each image is
    grey), from one decode per image."""

    def one(path: Path) -> tuple[np.ndarray, bool]:
        image = decode_for_grid(path.read_bytes(), 0, _NO_CAP, grid.side)
        return downsample(image, grid), _equal_bands(image)

    scanned = _parallel(one, files)
    return np.stack([pixels for pixels, _ in scanned]), np.array([g for _, g in scanned])


def grid_pixels(files: Sequence[Path], grid: PixelGrid) -> np.ndarray:
    """uint8 [N, side, side] (grey) or [N, side, side, 3], exactly as serving computes them."""

    def one(path: Path) -> np.ndarray:
        return downsample(decode_for_grid(path.read_bytes(), 0, _NO_CAP, grid.side), grid)

    return np.stack(_parallel(one, files))


def fit_grid(dataset: StoredDataset, fit_rows: np.ndarray) -> tuple[PixelGrid, np.ndarray]:
    """The grid ``fit_rows``' images call for, and every example's pixels on it.

    Images are scanned once on the RGB grid. A grey grid of the same side reuses the scan's
    first channel for its grey images: their bands are all equal to their luma, and resizing
    one band gives the values of resizing each equal band, so that is what serving computes.
    """
    files = image_files(dataset)
    median = float(np.median(_parallel(_min_side, [files[int(i)] for i in fit_rows])))
    colour = PixelGrid(grid_side(median, 3), grey=False)
    rgb, grey = _scan(files, colour)
    if not grey[fit_rows].all():
        return colour, rgb
    grid = PixelGrid(grid_side(median, 1), grey=True)
    if grid.side != colour.side:
        return grid, grid_pixels(files, grid)
    pixels = rgb[..., 0].copy()
    others = np.flatnonzero(~grey)  # colour images outside fit_rows: converted as in serving
    if len(others):
        pixels[others] = grid_pixels([files[int(i)] for i in others], grid)
    return grid, pixels
