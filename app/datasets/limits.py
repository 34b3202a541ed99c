"""The caps on an upload, from the settings: the API's preflight checks and the worker's
ingestion apply the same ones."""

from __future__ import annotations

from app.config import Settings
from ml.datasets.options import IngestLimits


def limits_from(settings: Settings) -> IngestLimits:
    return IngestLimits(
        max_uncompressed_bytes=settings.max_uncompressed_bytes,
        max_entries=settings.max_archive_entries,
        max_image_pixels=settings.max_image_pixels,
        max_file_bytes=settings.max_image_bytes,
        max_text_chars=settings.max_text_chars,
    )
