"""Image inputs: bytes -> decoded, size-checked RGB -> the model's own eval transform."""

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform

from ml.inference.errors import InputError

DEFAULT_MAX_PIXELS = 40_000_000
# The formats datasets accept. Naming them keeps Pillow's rarer decoders, and their bugs, away
# from bytes that strangers send (the JPEG opener also covers phones' multi-picture JPEGs).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
_EVAL_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def decode_image(data: object, index: int, max_pixels: int) -> Image.Image:
    """An RGB or greyscale ("L") image, or InputError; the pixel cap is checked from the header,
    before decoding.

    Greyscale stays greyscale: resizing one band gives exactly the values of resizing the
    three equal bands of its RGB copy (each band is resampled alike) for a third of the work;
    the preprocessor spreads it over three channels afterwards.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(index, "expected image bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        if image.width * image.height > max_pixels:
            raise InputError(
                index, f"image is {image.width}x{image.height}, over {max_pixels} pixels"
            )
        image.load()
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise InputError(index, "not a decodable image (jpeg, png, webp, bmp, gif, tiff)") from None
    except Exception as exc:
        # Hostile or truncated bytes fail deep in the codecs with many exception types
        # (OSError, SyntaxError, ValueError, struct.error...): each means this input only.
        raise InputError(index, f"image could not be decoded: {exc}") from None


class ImagePreprocessor:
    """Turns image bytes into the ``pixel_values`` batch the model was evaluated with.

    The timm eval transform (resize, center crop, to-tensor, normalize) the training code used
    for validation, rebuilt from the data config stored in the artifact. Its PIL steps run as
    they are; to-tensor and normalize become one lookup table per channel (the 256 values
    ``(v / 255 - mean) / std`` in float32, the very arithmetic of to-tensor then normalize),
    written straight into the batch array without torch's thread pool, whose threads would
    wake for every image and contend with the forward pass's own.
    """

    def __init__(self, preprocessing: Mapping[str, Any], max_pixels: int = DEFAULT_MAX_PIXELS):
        options = {key: preprocessing[key] for key in _EVAL_KEYS if key in preprocessing}
        if "input_size" in options:
            options["input_size"] = tuple(options["input_size"])
        for key in ("mean", "std"):
            if key in options:
                options[key] = tuple(options[key])
        self.transform = create_transform(**options, is_training=False)
        self.max_pixels = max_pixels
        steps = list(getattr(self.transform, "transforms", []))
        names = [type(step).__name__ for step in steps]
        if names[-2:] not in (["ToTensor", "Normalize"], ["MaybeToTensor", "Normalize"]):
            raise ValueError(f"unexpected eval transform {self.transform}")
        self._pil_steps: list[Callable[[Image.Image], Image.Image]] = steps[:-2]
        mean = np.asarray(steps[-1].mean, dtype=np.float32).reshape(-1, 1)
        std = np.asarray(steps[-1].std, dtype=np.float32).reshape(-1, 1)
        levels = np.arange(256, dtype=np.float32) / np.float32(255)
        self._tables = (levels[None, :] - mean) / std  # [3, 256] float32

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        images = [
            self._resize(decode_image(data, i, self.max_pixels)) for i, data in enumerate(inputs)
        ]
        batch = np.empty((len(images), 3, images[0].height, images[0].width), dtype=np.float32)
        for row, image in zip(batch, images, strict=True):
            pixels = np.asarray(image)  # uint8, [H, W] (greyscale) or [H, W, 3]
            for channel, table in enumerate(self._tables):
                levels = pixels if pixels.ndim == 2 else pixels[..., channel]
                np.take(table, levels, out=row[channel])
        return {"pixel_values": batch}

    def _resize(self, image: Image.Image) -> Image.Image:
        for step in self._pil_steps:
            image = step(image)
        return image
