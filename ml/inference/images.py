"""Image inputs: bytes -> decoded, size-checked RGB -> the model's own eval transform."""

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from timm.data import create_transform
from torchvision import transforms
from torchvision.transforms.functional import _compute_resized_output_size, pil_modes_mapping

from ml.datasets.formats import PIL_FORMATS, SUPPORTED_IMAGES
from ml.inference.errors import InputError

DEFAULT_MAX_PIXELS = 40_000_000
_EVAL_KEYS = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def check_image(data: object, index: int, max_pixels: int) -> None:
    """The checks ``decode_image`` makes before decoding, alone: the bytes open as one of the
    accepted formats and the header's size is under the pixel cap; else InputError.

    Only the header is read, so the cost does not grow with the image (20-180 us per input,
    measured from a 24x24 PNG to a 23 MB one; a full decode takes 0.05-66 ms): the API runs
    it on every input before it joins a batch. A file whose body is corrupt or truncated
    passes, and fails later, in ``decode_image``, as its own InputError.
    """
    _open(data, index, max_pixels).close()


def decode_image(
    data: object, index: int, max_pixels: int, draft: tuple[int, int] | None = None
) -> Image.Image:
    """An RGB or greyscale ("L") image, or InputError; the pixel cap is checked from the header,
    before decoding.

    Greyscale stays greyscale: resizing one band gives exactly the values of resizing the
    three equal bands of its RGB copy (each band is resampled alike) for a third of the work;
    the preprocessor spreads it over three channels afterwards.

    ``draft`` (width, height) lets a JPEG decode at a power-of-two reduced scale that still
    covers that size (Pillow's ``draft``); other formats ignore it. Only a preprocessor that
    asks for the same draft in training and serving sees the same pixels in both.
    """
    image = _open(data, index, max_pixels)
    try:
        if draft is not None:
            image.draft(None, draft)
        image.load()
        return image if image.mode in ("L", "RGB") else image.convert("RGB")
    except Exception as exc:
        raise _decode_error(exc, index, max_pixels) from None


def _open(data: object, index: int, max_pixels: int) -> Image.Image:
    """The image with only its header read, under the pixel cap, or InputError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(index, "expected image bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=PIL_FORMATS)
    except Exception as exc:
        raise _decode_error(exc, index, max_pixels) from None
    if image.width * image.height > max_pixels:
        image.close()
        raise InputError(index, _too_many_pixels(f"{image.width}x{image.height}", max_pixels))
    return image


def _decode_error(exc: Exception, index: int, max_pixels: int) -> InputError:
    if isinstance(exc, Image.DecompressionBombError):
        return InputError(index, _too_many_pixels("this image", max_pixels))
    if isinstance(exc, UnidentifiedImageError):
        return InputError(index, f"not a decodable image ({SUPPORTED_IMAGES})")
    # Hostile or truncated bytes fail deep in the codecs with many exception types
    # (OSError, SyntaxError, ValueError, struct.error...): each means this input only.
    return InputError(index, f"image could not be decoded: {exc}")


def _too_many_pixels(size: str, max_pixels: int) -> str:
    return (
        f"{size} is over the {max_pixels}-pixel limit (HONE_MAX_IMAGE_PIXELS, the same cap "
        "datasets have): send a smaller image"
    )


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
        self._resize_crop = _ResizeCrop.of(self._pil_steps)
        mean = np.asarray(steps[-1].mean, dtype=np.float32).reshape(-1, 1)
        std = np.asarray(steps[-1].std, dtype=np.float32).reshape(-1, 1)
        levels = np.arange(256, dtype=np.float32) / np.float32(255)
        self._tables = (levels[None, :] - mean) / std  # [3, 256] float32
        # Equal tables (the same mean and std per channel): greyscale is looked up once.
        self._one_table = bool((self._tables == self._tables[0]).all())

    def __call__(self, inputs: Sequence[object]) -> dict[str, np.ndarray]:
        images = [
            self._resize(decode_image(data, i, self.max_pixels)) for i, data in enumerate(inputs)
        ]
        batch = np.empty((len(images), 3, images[0].height, images[0].width), dtype=np.float32)
        for row, image in zip(batch, images, strict=True):
            pixels = np.asarray(image)  # uint8, [H, W] (greyscale) or [H, W, 3]
            if pixels.ndim == 2 and self._one_table:  # one channel computed, then copied
                np.take(self._tables[0], pixels, out=row[0])
                row[1:] = row[0]
                continue
            for channel, table in enumerate(self._tables):
                levels = pixels if pixels.ndim == 2 else pixels[..., channel]
                np.take(table, levels, out=row[channel])
        return {"pixel_values": batch}

    def _resize(self, image: Image.Image) -> Image.Image:
        if self._resize_crop is not None:
            fast = self._resize_crop(image)
            if fast is not None:
                return fast
        for step in self._pil_steps:
            image = step(image)
        return image


class _ResizeCrop:
    """torchvision's Resize(shorter side) then CenterCrop, as two direct PIL calls (same
    sizes, same crop box, same resampling filter, so the same pixels) without the transform
    wrappers' per-call overhead, which is a measurable share of a small image's cost."""

    def __init__(self, size: int, interpolation: int, crop: tuple[int, int]) -> None:
        self.size, self.interpolation, self.crop = size, interpolation, crop

    @classmethod
    def of(cls, steps: Sequence[object]) -> "_ResizeCrop | None":
        """The fast path for exactly [Resize(int), CenterCrop]; None for anything else."""
        if [type(step) for step in steps] != [transforms.Resize, transforms.CenterCrop]:
            return None
        resize, crop = steps
        assert isinstance(resize, transforms.Resize) and isinstance(crop, transforms.CenterCrop)
        size = resize.size if isinstance(resize.size, int) else list(resize.size)
        if isinstance(size, list) and len(size) == 1:
            size = size[0]
        if not isinstance(size, int) or resize.max_size is not None:
            return None
        height, width = (int(v) for v in crop.size)
        return cls(size, pil_modes_mapping[resize.interpolation], (height, width))

    def __call__(self, image: Image.Image) -> Image.Image | None:
        """The resized, cropped image; None where the crop would need padding (rare: the slow
        path handles it)."""
        new_h, new_w = _compute_resized_output_size((image.height, image.width), [self.size])
        crop_h, crop_w = self.crop
        if crop_h > new_h or crop_w > new_w:
            return None
        top = round((new_h - crop_h) / 2.0)
        left = round((new_w - crop_w) / 2.0)
        resized = image.resize((new_w, new_h), self.interpolation)
        return resized.crop((left, top, left + crop_w, top + crop_h))
