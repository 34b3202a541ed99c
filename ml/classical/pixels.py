"""Raw-pixel features of a stored image dataset, through the serving preprocessor's own steps
(ml/inference/pixels.py), and the grid a dataset's images call for.

The grid's side is the median shorter side of the training images, capped at
``MAX_SIDE``: a linear model gains little from more pixels than a thumbnail holds, and the
cost of the probe grows with them. It is grey when every training image is (R = G = B),
else RGB.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


def grid_side(files: Sequence[Path]) -> int:
    """min(median shorter side, MAX_SIDE), at least MIN_SIDE."""
    median = int(np.median(_parallel(_min_side, files)))
    return max(MIN_SIDE, min(median, MAX_SIDE))


def _equal_bands(image: Image.Image) -> bool:
    if image.mode == "L":
        return True
    pixels = np.asarray(image)
    return bool(
        (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    )


@dataclass
class ScannedImages:
    """Every image of a dataset downsampled in RGB, and which ones are grey (R = G = B)."""

    rgb: np.ndarray  # uint8 [N, side, side, 3]
    grey: np.ndarray  # bool [N]


def scan(files: Sequence[Path], side: int, interpolation: str) -> ScannedImages:
    """One decode per image gives both its RGB pixels and whether it is grey."""
    colour = PixelGrid(side, grey=False, interpolation=interpolation)

    def one(path: Path) -> tuple[np.ndarray, bool]:
        image = decode_for_grid(path.read_bytes(), 0, _NO_CAP, side)
        return downsample(image, colour), _equal_bands(image)

    scanned = _parallel(one, files)
    return ScannedImages(
        rgb=np.stack([pixels for pixels, _ in scanned]),
        grey=np.array([grey for _, grey in scanned], dtype=bool),
    )


def grid_pixels(files: Sequence[Path], grid: PixelGrid) -> np.ndarray:
    """uint8 [N, side, side] (grey) or [N, side, side, 3], exactly as serving computes them."""

    def one(path: Path) -> np.ndarray:
        return downsample(decode_for_grid(path.read_bytes(), 0, _NO_CAP, grid.side), grid)

    return np.stack(_parallel(one, files))


def scanned_pixels(scanned: ScannedImages, grid: PixelGrid, files: Sequence[Path]) -> np.ndarray:
    """The grid's pixels of scanned images, decoding again only the colour images of a grey
    grid. A grey image's bands are all its luma, and resizing one band gives the values of
    resizing each equal band, so its first channel is what serving computes."""
    if not grid.grey:
        return scanned.rgb
    pixels = scanned.rgb[..., 0].copy()
    colour = np.flatnonzero(~scanned.grey)
    if len(colour):
        pixels[colour] = grid_pixels([files[int(i)] for i in colour], grid)
    return pixels
