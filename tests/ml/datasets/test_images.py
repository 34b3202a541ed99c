"""verify_image: full decodes, with decompression bombs and impostors skipped, never raised."""

import pytest
from PIL import Image

from ml.datasets.images import verify_image
from ml.datasets.records import SkipExampleError
from tests.factories.uploads import image_bytes, png_claiming_size


def _reason(data: bytes, max_pixels: int = 40_000_000) -> str:
    with pytest.raises(SkipExampleError) as caught:
        verify_image(data, max_pixels)
    return caught.value.reason


@pytest.mark.parametrize(
    ("fmt", "extension"),
    [
        ("PNG", "png"),
        ("JPEG", "jpg"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("GIF", "gif"),
        ("TIFF", "tiff"),
    ],
)
def test_supported_formats_decode(fmt: str, extension: str) -> None:
    image = verify_image(image_bytes(size=(40, 30), fmt=fmt), 40_000_000)
    assert (image.extension, image.width, image.height) == (extension, 40, 30)


def test_text_pretending_to_be_an_image_is_corrupt() -> None:
    assert _reason(b"this is not a jpeg at all\n" * 20) == "corrupt"


def test_formats_we_do_not_promise_are_not_decoded() -> None:
    assert _reason(image_bytes(fmt="ICO")) == "corrupt"


def test_truncated_image_is_corrupt() -> None:
    data = image_bytes(size=(64, 64), fmt="PNG")
    assert _reason(data[: len(data) // 2]) == "corrupt"


def test_empty_file() -> None:
    assert _reason(b"") == "empty_file"


def test_our_pixel_cap_skips_as_too_large() -> None:
    assert _reason(image_bytes(size=(100, 100)), max_pixels=9_999) == "too_large"


def test_header_claiming_more_than_our_cap_is_refused_before_decoding() -> None:
    # 20000x20000 would need 400 MB once decoded; the file itself is ~70 bytes.
    assert _reason(png_claiming_size(20_000, 20_000)) == "too_large"


def test_pillow_decompression_bomb_warning_is_a_skip_not_a_crash() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None
    pixels = Image.MAX_IMAGE_PIXELS + 1_000_000  # over Pillow's warning threshold, under its error
    assert pixels < 2 * Image.MAX_IMAGE_PIXELS
    assert _reason(png_claiming_size(pixels // 10_000, 10_000), max_pixels=10**12) == "too_large"


def test_pillow_decompression_bomb_error_is_a_skip_not_a_crash() -> None:
    assert _reason(png_claiming_size(30_000, 30_000), max_pixels=10**12) == "too_large"
