"""Serving's image preprocessing gives exactly the pixels of the timm eval transform that
training validated with, whatever the image's mode and shape."""

import io

import numpy as np
import pytest
from PIL import Image

from ml.inference.images import ImagePreprocessor

CONFIGS = [
    {"input_size": [3, 224, 224], "mean": [0.5] * 3, "std": [0.5] * 3,
     "interpolation": "bicubic", "crop_pct": 0.875},
    {"input_size": [3, 160, 160], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
     "interpolation": "bilinear", "crop_pct": 0.95},
    {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.25] * 3,
     "interpolation": "bicubic", "crop_pct": 1.0},
]  # fmt: skip


def _png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    image = Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _images() -> list[bytes]:
    rng = np.random.default_rng(0)
    images = []
    for height, width in [(28, 28), (37, 300), (300, 37), (1, 90), (224, 224), (480, 640)]:
        grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
        colour = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        images += [_png(grey), _png(colour), _png(colour, "RGBA"), _png(colour, "P")]
    return images


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: str(c["input_size"][1]))
def test_pixels_equal_the_timm_eval_transform_exactly(config: dict[str, object]) -> None:
    preprocess = ImagePreprocessor(config)
    images = _images()
    batch = preprocess(images)["pixel_values"]
    expected = np.stack(
        [
            preprocess.transform(Image.open(io.BytesIO(data)).convert("RGB")).numpy()
            for data in images
        ]
    )
    assert batch.dtype == np.float32 and batch.shape == expected.shape
    assert np.array_equal(batch, expected)
