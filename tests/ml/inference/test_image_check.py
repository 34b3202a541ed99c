"""check_image: the header-level half of decode_image, which the API runs on every input
before it joins a batch. Same verdicts, same words, no decoding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ml.inference.errors import InputError
from ml.inference.images import check_image, decode_image
from tests.ml.inference.builders import image_bytes


def _error(call: object, data: bytes, max_pixels: int) -> str:
    with pytest.raises(InputError) as caught:
        call(data, 3, max_pixels)  # type: ignore[operator]
    assert caught.value.index == 3
    return caught.value.message


@pytest.mark.parametrize(
    ("data", "max_pixels"),
    [
        (b"", 40_000_000),
        (b"not an image at all", 40_000_000),
        (b"\x89PNG\r\n\x1a\n but no header", 40_000_000),
        (image_bytes(1, size=(100, 50)), 4_999),
    ],
)
def test_the_header_check_refuses_as_decoding_does(data: bytes, max_pixels: int) -> None:
    assert _error(check_image, data, max_pixels) == _error(decode_image, data, max_pixels)


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    buf = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buf, format="PNG")
    assert "pixel limit" in _error(check_image, buf.getvalue(), 40_000_000)


def test_a_truncated_body_passes_the_header_check_and_fails_decoding() -> None:
    png = image_bytes(2, size=(64, 64))
    check_image(png, 0, 40_000_000)
    truncated = png[: len(png) // 2]
    check_image(truncated, 0, 40_000_000)
    assert "could not be decoded" in _error(decode_image, truncated, 40_000_000)
