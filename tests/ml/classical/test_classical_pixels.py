"""Raw-pixel features: the grid a dataset's images call for, and training's rows equal to what
the serving preprocessor computes from the same bytes."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.classical import classical_candidate
from ml.classical.candidate import PixelFeaturizer
from ml.classical.pixels import image_files
from ml.datasets.store import StoredDataset
from ml.inference.errors import InputError
from ml.inference.pixels import PixelPreprocessor
from tests.ml.classical.classical_data import digits_images, digits_split, folder_zip, ingest_upload


def _encoded(pixels: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


def _photo(rng: np.random.Generator, width: int, height: int, grey: bool = False) -> np.ndarray:
    """A smooth random picture (a JPEG keeps it close), colour or with R = G = B."""
    small = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    if grey:
        small[..., 1] = small[..., 2] = small[..., 0]
    big = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(big)


def _images_dataset(root: Path, images: list[bytes], ext: str = "png") -> StoredDataset:
    labels = ["a" if i % 2 else "b" for i in range(len(images))]
    root.mkdir(parents=True, exist_ok=True)
    upload = folder_zip(root / f"upload-{len(images)}-{ext}.zip", images, labels, ext)
    return ingest_upload(upload, "image_classification", root)


def _served(featurizer: PixelFeaturizer, dataset: StoredDataset) -> np.ndarray:
    preprocessor = PixelPreprocessor(featurizer.preprocessing())
    inputs = [path.read_bytes() for path in image_files(dataset)]
    return preprocessor(inputs)["features"]


def test_colour_photos_of_mixed_sizes_give_serving_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sizes = [(640, 480), (300, 200), (120, 160), (90, 90), (1000, 750), (75, 60)] * 4
    images = [_encoded(_photo(rng, w, h), "JPEG") for w, h in sizes]
    dataset = _images_dataset(tmp_path, images, "jpg")
    featurizer = classical_candidate("image", dataset, np.arange(len(images)))
    assert isinstance(featurizer, PixelFeaturizer)
    # Median shorter side 175 px; 3 channels of at most 1,024 values: 18 x 18.
    assert featurizer.preprocessing() == {
        "kind": "pixels",
        "side": 18,
        "channels": 3,
        "interpolation": "bicubic",
        "num_features": 972,
    }
    assert featurizer.description == "linear model on 18x18 RGB pixels"
    features = featurizer.features(dataset)
    assert features.dtype.is_floating_point and tuple(features.shape) == (len(images), 972)
    assert float(features.min()) >= 0.0 and float(features.max()) <= 1.0
    np.testing.assert_array_equal(features.numpy(), _served(featurizer, dataset))


def test_grey_images_give_a_grey_grid_and_serving_features(tmp_path: Path) -> None:
    """Greyscale PNGs and RGB ones with R = G = B are grey alike; a held-out colour image is
    turned grey as serving turns it, not by its first channel."""
    rng = np.random.default_rng(1)
    images = [_encoded(_photo(rng, 48, 40, grey=True)[..., 0], "PNG", "L") for _ in range(6)]
    images += [_encoded(_photo(rng, 40, 56, grey=True), "PNG") for _ in range(6)]
    images += [_encoded(_photo(rng, 60, 60, grey=True), "JPEG") for _ in range(6)]
    dataset = _images_dataset(tmp_path / "grey", images)
    featurizer = classical_candidate("image", dataset, np.arange(len(images)))
    assert isinstance(featurizer, PixelFeaturizer)
    assert featurizer.grid.grey and featurizer.grid.side == 32  # median shorter side 40
    assert featurizer.description == "linear model on 32x32 grey pixels"
    features = featurizer.features(dataset)
    assert tuple(features.shape) == (len(images), 32 * 32)
    np.testing.assert_array_equal(features.numpy(), _served(featurizer, dataset))

    colour = [_encoded(_photo(rng, 50, 44), "PNG") for _ in range(4)]
    held_out = _images_dataset(tmp_path / "held-out", colour)
    np.testing.assert_array_equal(
        featurizer.features(held_out).numpy(), _served(featurizer, held_out)
    )


def test_colour_images_outside_the_fit_rows_keep_the_grid_grey(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = [_encoded(_photo(rng, 20, 20, grey=True), "PNG") for _ in range(6)]
    images += [_encoded(_photo(rng, 20, 20), "PNG") for _ in range(2)]
    dataset = _images_dataset(tmp_path, images)
    rows = np.array([i for i, e in enumerate(dataset.examples) if _is_grey(e.file)])
    assert len(rows) == 6
    grey = classical_candidate("image", dataset, rows)
    assert isinstance(grey, PixelFeaturizer) and grey.grid.grey and grey.grid.side == 20
    np.testing.assert_array_equal(grey.features(dataset).numpy(), _served(grey, dataset))
    every = classical_candidate("image", dataset, np.arange(len(images)))
    assert isinstance(every, PixelFeaturizer) and not every.grid.grey


def _is_grey(path: Path | None) -> bool:
    assert path is not None
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    return bool((pixels == pixels[..., :1]).all())


def test_digits_keep_their_own_8x8_pixels(tmp_path: Path) -> None:
    train, _ = digits_split(60)
    images, labels = digits_images(train)
    dataset = ingest_upload(
        folder_zip(tmp_path / "d.zip", images, labels), "image_classification", tmp_path
    )
    featurizer = classical_candidate("image", dataset, np.arange(len(dataset.examples)))
    assert featurizer.num_features == 64 and featurizer.preprocessing()["side"] == 8
    # No resampling at the images' own size: the features are the PNGs' levels / 255.
    for example, row in zip(dataset.examples, featurizer.features(dataset), strict=True):
        assert example.file is not None
        with Image.open(example.file) as image:
            levels = np.asarray(image, dtype=np.float32).reshape(-1)
        np.testing.assert_array_equal(row.numpy(), levels / np.float32(255))


def test_tiny_images_get_the_smallest_grid(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    images = [_encoded(rng.integers(0, 256, (3, 3, 3), dtype=np.uint8), "PNG") for _ in range(6)]
    dataset = _images_dataset(tmp_path, images)
    featurizer = classical_candidate("image", dataset, np.arange(len(images)))
    assert featurizer.preprocessing()["side"] == 4 and featurizer.num_features == 48


def test_serving_rejects_what_is_not_an_image() -> None:
    preprocessor = PixelPreprocessor({"side": 8, "channels": 1})
    with pytest.raises(InputError) as caught:
        preprocessor([_encoded(np.zeros((8, 8), np.uint8), "PNG", "L"), b"not an image"])
    assert caught.value.index == 1
    with pytest.raises(ValueError, match="interpolation"):
        PixelPreprocessor({"side": 8, "channels": 1, "interpolation": "sharpest"})
