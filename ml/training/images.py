"""Images for training: decoded once into a uint8 cache, then cropped, flipped and normalised
as whole batches of tensors, so no epoch ever opens an image file again.

The cache holds each image resized (shorter side) to floor(size / crop_pct) and centre-cropped
square: exactly what timm's eval transform sees before its final centre crop. Evaluation crops
the centre; training samples a random scaled, stretched, shifted and mirrored window instead.
"""

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ml.backbones.atomic import write_atomically
from ml.datasets.store import StoredDataset
from ml.device import usable_cpus
from ml.training.loader import Loader

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_DECODE_CHUNK = 256
# Training crops cover this fraction of the cached square's area, with this aspect range:
# milder than ImageNet's RandomResizedCrop (0.08-1), which destroys small objects in small data.
_CROP_AREA = (0.35, 1.0)
_CROP_LOG_RATIO = (math.log(3 / 4), math.log(4 / 3))


def image_preprocessing(data_config: dict[str, Any], image_size: int) -> dict[str, Any]:
    """The artifact's preprocessing block: timm's data config at the chosen resolution."""
    return {
        "input_size": [3, image_size, image_size],
        "mean": [float(v) for v in data_config["mean"]],
        "std": [float(v) for v in data_config["std"]],
        "interpolation": str(data_config.get("interpolation", "bicubic")),
        "crop_pct": float(data_config.get("crop_pct", 1.0)),
    }


@dataclass(frozen=True)
class CachedImages:
    pixels: np.ndarray  # uint8 [N, 3, S, S], memory-mapped
    preprocessing: dict[str, Any]


def _decode(path: Path, side: int, resample: Image.Resampling) -> np.ndarray:
    # Full decode and torchvision's size rule (long side truncated), so training sees the
    # same pixels as timm's eval transform in serving.
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    short, long = min(width, height), max(width, height)
    new_long = int(side * long / short)
    size = (side, new_long) if width <= height else (new_long, side)
    resized = rgb.resize(size, resample)
    left, top = (size[0] - side) // 2, (size[1] - side) // 2
    square = resized.crop((left, top, left + side, top + side))
    return np.asarray(square, dtype=np.uint8).transpose(2, 0, 1)


def cache_images(
    dataset: StoredDataset,
    preprocessing: dict[str, Any],
    cache_dir: Path,
    check: Callable[[], None] | None = None,
) -> CachedImages:
    """The dataset's images at this preprocessing, decoding them only on the first call.

    check() runs between chunks of images so that a long first decode can be cancelled.
    """
    side = math.floor(preprocessing["input_size"][-1] / preprocessing["crop_pct"])
    interpolation = preprocessing["interpolation"]
    target = cache_dir / "images" / f"{dataset.path.name}-{side}px-{interpolation}.npy"
    if not target.is_file():
        files = [example.file for example in dataset.examples]
        if any(file is None for file in files):
            raise ValueError(f"{dataset.path}: image dataset has an example without a file")
        resample = _RESAMPLE.get(interpolation, Image.Resampling.BICUBIC)

        def write(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (len(files), 3, side, side))
            # PIL releases the GIL while decoding and resizing: threads use every core.
            with ThreadPoolExecutor(usable_cpus()) as pool:
                for start in range(0, len(files), _DECODE_CHUNK):
                    if check is not None:
                        check()
                    chunk = files[start : start + _DECODE_CHUNK]
                    decoded = pool.map(lambda f: _decode(f, side, resample), chunk)
                    for offset, pixels in enumerate(decoded):
                        out[start + offset] = pixels
            out.flush()
            del out

        write_atomically(target, write)
    pixels = np.load(target, mmap_mode="r", allow_pickle=False)
    return CachedImages(pixels=pixels, preprocessing=preprocessing)


def _crop_boxes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Affine matrices [B, 2, 3] mapping output to source coordinates in [-1, 1]."""
    area = torch.empty(batch).uniform_(*_CROP_AREA, generator=generator)
    ratio = torch.empty(batch).uniform_(*_CROP_LOG_RATIO, generator=generator).exp()
    width = (area * ratio).sqrt().clamp(max=1.0)
    height = (area / ratio).sqrt().clamp(max=1.0)
    shift_x = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - width)
    shift_y = (torch.rand(batch, generator=generator) * 2 - 1) * (1 - height)
    flip = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = width * flip
    theta[:, 0, 2] = shift_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = shift_y
    return theta


class ImageLoader(Loader):
    def __init__(self, images: CachedImages, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.images = images
        self.size = int(images.preprocessing["input_size"][-1])
        mean = torch.tensor(images.preprocessing["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(images.preprocessing["std"]).view(1, 3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add.
        self.scale = (1 / (255 * std)).to(self.device)
        self.shift = (-mean / std).to(self.device)
        self.memory_format = (
            torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        )

    def _inputs(self, rows: np.ndarray) -> torch.Tensor:
        # Sorted reads are sequential on the memory map; the order is restored after.
        order = np.argsort(rows, kind="stable")
        pixels = np.empty((len(rows), *self.images.pixels.shape[1:]), dtype=np.uint8)
        pixels[order] = self.images.pixels[rows[order]]
        if not self.train:
            pixels = center_crop(pixels, self.size)
        x = torch.from_numpy(pixels).to(self.device, non_blocking=True).float()
        if self.train:
            theta = _crop_boxes(len(rows), self.generator).to(self.device)
            grid = F.affine_grid(theta, [len(rows), 3, self.size, self.size], align_corners=False)
            x = F.grid_sample(
                x, grid, mode="bilinear", padding_mode="reflection", align_corners=False
            )
        x = x.mul_(self.scale).add_(self.shift)
        return x.contiguous(memory_format=self.memory_format)


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
    """timm's CenterCrop offsets: round((side - size) / 2)."""
    top = round((x.shape[-2] - size) / 2)
    left = round((x.shape[-1] - size) / 2)
    return x[..., top : top + size, left : left + size]
