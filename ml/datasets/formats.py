"""Which files Hone accepts, decided by name only (contents are checked later)."""

from pathlib import PurePosixPath
from typing import Literal

from ml.datasets.errors import IngestError
from ml.tasks import Task, tasks_for

Kind = Literal["image_zip", "text_csv", "text_jsonl"]

UPLOAD_KINDS: dict[str, Kind] = {
    ".zip": "image_zip",
    ".csv": "text_csv",
    ".jsonl": "text_jsonl",
    ".ndjson": "text_jsonl",
}
KIND_MODALITY: dict[Kind, str] = {
    "image_zip": "image",
    "text_csv": "text",
    "text_jsonl": "text",
}
SUPPORTED_IMAGES = "JPEG, PNG, WebP, BMP, GIF and TIFF"
# The Pillow formats datasets and predictions open, so both accept the same files. Naming them
# keeps Pillow's rarer decoders (PSD, ICO, EPS, ...), and their bugs, away from bytes that
# strangers send. MPO (phones' multi-picture JPEGs) comes through the JPEG opener.
PIL_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def extension(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def upload_kind(filename: str, task: Task) -> Kind:
    """The upload's kind from its file name, checked against the requested task's modality."""
    kind = UPLOAD_KINDS.get(extension(filename))
    if kind is None:
        raise IngestError(
            "unsupported_file_type",
            f"{filename!r} is not a supported upload. Upload a .zip of images "
            "(one folder per label, or a labels.csv), or a .csv / .jsonl of texts.",
            status=415,
        )
    modality = KIND_MODALITY[kind]
    if task.modality != modality:
        fitting = " or ".join(t.name for t in tasks_for(modality))
        hint = (
            f"a .zip holds an image dataset: use task {fitting}, or upload texts as .csv / .jsonl"
            if kind == "image_zip"
            else f"a .csv / .jsonl holds a text dataset: use task {fitting}, "
            "or upload images as a .zip"
        )
        raise IngestError(
            "wrong_task", f"{filename!r} does not fit task {task.name!r}: {hint}.", field="task"
        )
    return kind


def is_image_name(name: str) -> bool:
    return extension(name) in IMAGE_EXTENSIONS
