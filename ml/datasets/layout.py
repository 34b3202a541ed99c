"""Where the images and their labels are in an image zip, decided from entry names alone."""

import unicodedata
import zipfile
from dataclasses import dataclass

from ml.datasets.formats import is_image_name

LABELS_CSV = "labels.csv"
_JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class ArchiveLayout:
    """The zip's files relative to its dataset root (a single wrapper folder removed)."""

    prefix: str  # the wrapper folder stripped from every name, e.g. "mydata/", or ""
    labels_csv: zipfile.ZipInfo | None
    files: tuple[tuple[str, zipfile.ZipInfo], ...]  # (relative path, entry), junk left out


def _parts(name: str) -> list[str]:
    return [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]


def _is_junk(parts: list[str]) -> bool:
    """OS metadata the user never meant to upload: ignored, not reported as skipped."""
    return any(part.startswith(".") or part in _JUNK_NAMES for part in parts)


def plan_layout(infos: list[zipfile.ZipInfo]) -> ArchiveLayout:
    entries = [
        (parts, info)
        for info in infos
        if not info.is_dir() and (parts := _parts(info.filename)) and not _is_junk(parts)
    ]
    prefix = ""
    tops = {parts[0] for parts, _ in entries}
    if len(tops) == 1 and all(len(parts) > 1 for parts, _ in entries):
        inner = [parts[1:] for parts, _ in entries]
        # Strip "mydata/" only when something is left to label by: a labels.csv or subfolders.
        # A lone "cat/" folder is one label, not a wrapper.
        if [LABELS_CSV] in inner or any(len(parts) > 1 for parts in inner):
            prefix = f"{tops.pop()}/"
            entries = [(parts[1:], info) for parts, info in entries]
    labels_csv = next((info for parts, info in entries if parts == [LABELS_CSV]), None)
    files = tuple(("/".join(parts), info) for parts, info in entries if parts != [LABELS_CSV])
    return ArchiveLayout(prefix=prefix, labels_csv=labels_csv, files=files)


def folder_label(relative_path: str) -> str | None:
    """The target cell a folder-per-label zip gives a file: its top folder (None at the root).

    macOS zips store folder names decomposed (NFD) while typed text is composed (NFC): without
    normalizing, "café/" and a CSV's "café" would be two labels.
    """
    parts = relative_path.split("/")
    return unicodedata.normalize("NFC", parts[0]).strip() if len(parts) > 1 else None


def image_folder_labels(layout: ArchiveLayout) -> set[str]:
    """Folder names of the image files in a folder-per-label layout (nothing decoded)."""
    return {
        label
        for path, _ in layout.files
        if is_image_name(path) and (label := folder_label(path)) is not None
    }
