"""A processed dataset's examples, for the dataset page: thumbnails and text snippets.

Read from the stored dataset (app/storage/places.py `dataset_dir`, ml/datasets/store.py), the
same directory training reads. It is content-addressed, so what is read once per host is kept
(a few datasets' manifests) and never goes stale.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

from PIL import Image

from app.storage.errors import StorageUnavailable, StoreMissing
from app.storage.places import Storage
from ml.datasets.store import DatasetFormatError, Example, StoredDataset, load_dataset

THUMB_PX = 160
SNIPPET_CHARS = 240
_KEPT = 8


@dataclass(frozen=True)
class Examples:
    dataset: StoredDataset
    index_of: dict[str, int]  # an example's source ("cat/001.jpg", "line 12") -> its index

    def get(self, index: int) -> Example | None:
        examples = self.dataset.examples
        return examples[index] if 0 <= index < len(examples) else None


_cache: OrderedDict[str, Examples] = OrderedDict()
_lock = threading.Lock()


def load(storage: Storage, sha256: str | None) -> Examples | None:
    """The dataset's examples, or None when they cannot be read now (not processed, or the
    store unreachable): the page then shows the audit without pictures."""
    if not sha256:
        return None
    with _lock:
        if sha256 in _cache:
            _cache.move_to_end(sha256)
            return _cache[sha256]
    try:
        stored = load_dataset(storage.dataset_dir(sha256))
    except (StoreMissing, StorageUnavailable, DatasetFormatError, OSError, ValueError):
        return None
    found = Examples(stored, {e.source: i for i, e in enumerate(stored.examples)})
    with _lock:
        _cache[sha256] = found
        while len(_cache) > _KEPT:
            _cache.popitem(last=False)
    return found


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def thumbnail(example: Example) -> bytes | None:
    """A small PNG of an image example (None for a text one or an unreadable file)."""
    if example.file is None:
        return None
    try:
        with Image.open(example.file) as image:
            image.draft("RGB", (THUMB_PX, THUMB_PX))  # JPEG: decode at a fraction of the size
            image.seek(0)
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    picture.thumbnail((THUMB_PX, THUMB_PX))
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()
