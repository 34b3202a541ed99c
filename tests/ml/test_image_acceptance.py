"""Whatever image a dataset accepts, prediction accepts: the same formats, modes and pixel cap
(ml/datasets/images.py verifies uploads, ml/inference/images.py decodes predict inputs)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.datasets.formats import PIL_FORMATS
from ml.datasets.images import verify_image
from ml.datasets.records import SkipExampleError
from ml.inference.errors import InputError
from ml.inference.images import decode_image

MODES = ("RGB", "RGBA", "L", "LA", "P", "1", "I;16", "CMYK")


def _encode(mode: str, fmt: str, size: tuple[int, int] = (37, 23)) -> bytes | None:
    rng = np.random.default_rng(len(mode) * 7 + len(fmt))
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    try:
        image.convert(mode).save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        return None  # this format cannot store this mode
    return buf.getvalue()


@pytest.mark.parametrize("fmt", PIL_FORMATS)
def test_every_format_and_mode_a_dataset_keeps_is_predictable(fmt: str) -> None:
    kept = 0
    for mode in MODES:
        data = _encode(mode, fmt)
        if data is None:
            continue
        try:
            verify_image(data, max_pixels=40_000_000)
        except SkipExampleError:
            continue
        kept += 1
        image = decode_image(data, 0, max_pixels=40_000_000)
        assert image.mode in ("L", "RGB") and image.size == (37, 23), (fmt, mode)
    assert kept >= 2, f"too few {fmt} modes encoded to test anything"


def test_the_pixel_cap_is_the_same_on_both_sides() -> None:
    data = _encode("RGB", "PNG", size=(100, 50))
    assert data is not None
    verify_image(data, max_pixels=5_000)
    decode_image(data, 0, max_pixels=5_000)
    with pytest.raises(SkipExampleError, match="limit"):
        verify_image(data, max_pixels=4_999)
    with pytest.raises(InputError, match="HONE_MAX_IMAGE_PIXELS"):
        decode_image(data, 0, max_pixels=4_999)


def test_a_decompression_bomb_is_refused_for_its_size_not_as_undecodable() -> None:
    """20000 x 20000 is past Pillow's own bomb limit: the answer names the pixel cap."""
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, format="PNG")
    with pytest.raises(InputError, match="pixel limit") as caught:
        decode_image(buf.getvalue(), 0, max_pixels=40_000_000)
    assert "decodable" not in str(caught.value)
