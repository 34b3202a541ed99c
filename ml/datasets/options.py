"""What the user asked for (options) and what the service tolerates (limits)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestOptions:
    # A registered task's name (ml.tasks.task_names()); the task decides which columns hold
    # the target and how a cell becomes one.
    task: str
    filename: str  # the client's file name: only its extension is used
    multilabel: bool = False  # classification only
    text_column: str = "text"
    label_column: str = "label"  # classification: the column of the labels
    # regression: the column of the numbers, or several separated by commas (one target each)
    target_column: str = "target"


@dataclass(frozen=True)
class IngestLimits:
    """Caps that keep a hostile or accidental upload from exhausting the worker.

    Sizes are counted while actually decompressing; declared sizes are only used to reject early.
    Python's csv module refuses fields over 131,072 characters on its own, so raising
    ``max_text_chars`` above that has no effect for CSV uploads.
    """

    # total bytes across a zip's entries, or the size of a text upload
    max_uncompressed_bytes: int = 2 * 1024**3
    max_entries: int = 200_000
    # a single image; larger ones are skipped as "too_large"
    max_file_bytes: int = 50 * 1024**2
    # Pillow decompression-bomb cap: images with more pixels are skipped as "too_large"
    max_image_pixels: int = 40_000_000
    # a single text; longer ones are skipped as "too_large"
    max_text_chars: int = 100_000
    # labels with fewer examples are listed in the report's labels_too_small
    min_examples_per_label: int = 2
