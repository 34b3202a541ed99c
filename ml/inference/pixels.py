"""Raw-pixel inputs of a classical image model: bytes -> the centre square, downsampled to a
small grid, grey or RGB, as [0, 1] floats in one flat row per image.

Training computes its features with this same code (ml/classical/pixels.py), so a served
image and a training image with the same bytes give the same row.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ml.classical.model import FEATURES_INPUT
from ml.inference.images import DEFAULT_MAX_PIXELS, decode_image

# A JPEG is decoded at the smallest power-of-two scale (Pillow's draft) that keeps this many
# times the grid's side: a photo then decodes several times faster, and the final
# antialiased downsampling still averages over several decoded pixels per grid cell.
DRAFT_OVERSAMPLE = 4
_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255)  # uint8 level -> [0, 1]


@dataclass(frozen=True)
class PixelGrid:
    """What the pixels of a classical image model are: side x side, grey or RGB."""

    side: int
    grey: bool
    interpolation: str = "bicubic"  # a Pillow resampling filter, by name

    def __post_init__(self) -> None:
        if self.side < 1:
            raise ValueError(f"a pixel grid's side must be positive, not {self.side}")
        if self.interpolation.upper() not in Image.Resampling.__members__:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    @property
    def num_features(self) -> int:
        return self.side * self.side * self.channels

    def to_preprocessing(self) -> dict[str, Any]:
        """The artifact config's preprocessing block."""
        return {
            "kind": "pixels",
            "side": self.side,
            "channels": self.channels,
            "interpolation": self.interpolation,
            "num_features": self.num_features,
        }

    @classmethod
    def from_preprocessing(cls, preprocessing: Mapping[str, Any]) -> "PixelGrid":
        channels = int(preprocessing["channels"])
        if channels not in (1, 3):
            raise ValueError(f"a pixel model has 1 or 3 channels, not {channels}")
        return cls(
            side=int(preprocessing["side"]),
            grey=channels == 1,
            interpolation=str(preprocessing.get("interpolation", "bicubic")),
        )


def decode_for_grid(data: object, index: int, max_pixels: int, side: int) -> Image.Image:
    """The RGB or greyscale image, decoded at a reduced scale where the format allows."""
    draft = (DRAFT_OVERSAMPLE * side, DRAFT_OVERSAMPLE * side)
    return decode_image(data, index, max_pixels, draft=draft)


def downsample(image: Image.Image, grid: PixelGrid) -> np.ndarray:
    """uint8 [side, side] (grey) or [side, side, 3]: the image's centre square, resized.

    A colour input to a grey model is converted with Pillow's luma weights (on a grey image
    with R = G = B they give back that value exactly); a grey input to a colour model gets
    its one band in all three channels.
    """
    if grid.grey and image.mode != "L":
        image = image.convert("L")
    width, height = image.size
    short = min(width, height)
    left, top = (width - short) // 2, (height - short) // 2
    resample = Image.Resampling[grid.interpolation.upper()]
    square = image.resize(
        (grid.side, grid.side), resample, box=(left, top, left + short, top + short)
    )
    pixels = np.asarray(square, dtype=np.uint8)
    if not grid.grey and pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return pixels


def to_features(pixels: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """float32 [n, side * side * channels] in [0, 1] from downsampled uint8 images (a list,
    or stacked along a first axis)."""
    stacked = np.stack(pixels) if isinstance(pixels, Sequence) else pixels
    return np.take(_LEVELS, stacked.reshape(len(stacked), -1))


class PixelPreprocessor:
    """Image bytes -> the ``features`` batch of a classical pixel model."""

    def __init__(
        self, preprocessing: Mapping[str, Any], max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.grid = PixelGrid.from_preprocessing(preprocessing)
        self.max_pixels = max_pixels

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        side = self.grid.side
        pixels = [
            downsample(decode_for_grid(data, i, self.max_pixels, side), self.grid)
            for i, data in enumerate(inputs)
        ]
        return {FEATURES_INPUT: to_features(pixels)}
