"""Verifying that an uploaded file is an image Hone can train on, by fully decoding it."""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ml.datasets.formats import PIL_FORMATS, SUPPORTED_IMAGES
from ml.datasets.records import SkipExampleError

# Pillow format name -> the extension the stored file gets (the content decides, not the name).
_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",  # multi-picture JPEGs straight from cameras and phones
    "PNG": "png",
    "WEBP": "webp",
    "BMP": "bmp",
    "GIF": "gif",
    "TIFF": "tiff",
}


@dataclass(frozen=True)
class DecodedImage:
    extension: str
    width: int
    height: int


def verify_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode ``data`` completely (first frame); raises SkipExampleError if it cannot be used.

    Pillow's own process-wide MAX_IMAGE_PIXELS still applies on top of ``max_pixels``: its
    warning and its error are both turned into a "too_large" skip.
    """
    if not data:
        raise SkipExampleError("empty_file", "the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise SkipExampleError(
                        "too_large",
                        f"{width}x{height} pixels is more than the {max_pixels}-pixel limit "
                        "(HONE_MAX_IMAGE_PIXELS)",
                    )
                image.load()
                extension = _EXTENSIONS[str(image.format)]
    except SkipExampleError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SkipExampleError(
            "too_large",
            f"more pixels than the pixel limit allows (HONE_MAX_IMAGE_PIXELS; {error})",
        ) from error
    except UnidentifiedImageError as error:
        raise SkipExampleError("corrupt", f"not a readable {SUPPORTED_IMAGES} image") from error
    # Hostile bytes reach deep into the codecs, which fail with many exception types
    # (OSError, SyntaxError, ValueError, struct.error, ...): any of them means this file only.
    except Exception as error:
        raise SkipExampleError("corrupt", f"the image data is damaged ({error})") from error
    return DecodedImage(extension=extension, width=width, height=height)
