"""Turning the label cell / value a user wrote into a tuple of clean label strings."""

import json
import unicodedata

from ml.datasets.records import SkipExampleError

# Labels become JSON keys, metric names and API fields: long ones are almost always a
# mis-assigned column (e.g. the text in the label column).
MAX_LABEL_CHARS = 200


def normalize_label(raw: str) -> str:
    # macOS zips store folder names decomposed (NFD) while typed text is composed (NFC):
    # without this "café/" and a CSV's "café" would be two labels.
    return unicodedata.normalize("NFC", raw).strip()


def clean_label(raw: str) -> str:
    label = normalize_label(raw)
    if not label:
        raise SkipExampleError("missing_label", "the label is empty")
    if len(label) > MAX_LABEL_CHARS:
        raise SkipExampleError(
            "invalid_label",
            f"the label is {len(label)} characters long (at most {MAX_LABEL_CHARS}); "
            "is the label column the right one?",
        )
    try:
        label.encode("utf-8")
    except UnicodeEncodeError as error:  # a JSON "\ud800" escape decodes to a lone surrogate
        raise SkipExampleError("invalid_label", "the label has invalid unicode escapes") from error
    return label


def _one(value: object) -> str:
    # JSON numbers are common class ids (0/1); bools and floats are almost always a mistake.
    if isinstance(value, str):
        return clean_label(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise SkipExampleError(
        "invalid_label", f"a label must be a string or an integer, not {json.dumps(value)}"
    )


def _split_cell(cell: str) -> list[object]:
    stripped = cell.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError) as error:
            raise SkipExampleError(
                "invalid_label", f"the label list is not valid JSON ({error})"
            ) from error
        if not isinstance(parsed, list):
            raise SkipExampleError("invalid_label", "the label list is not a JSON list")
        return parsed
    return list(stripped.split("|"))


def parse_labels(value: object, multilabel: bool) -> tuple[str, ...]:
    """Sorted unique labels from a CSV cell (str) or a JSON value; raises SkipExampleError.

    Multilabel values are a JSON list (``["a","b"]``, in a CSV cell or as a JSONL value) or
    ``a|b|c``. Single-label values are taken whole: ``a|b`` is one label, and a JSON list is
    an error because it shows the user meant multilabel.
    """
    if value is None:
        raise SkipExampleError("missing_label", "there is no label")
    if not multilabel:
        if isinstance(value, list):
            raise SkipExampleError(
                "invalid_label",
                "a list of labels needs multilabel=true; this dataset is single-label",
            )
        return (_one(value),)
    items = _split_cell(value) if isinstance(value, str) else value
    if not isinstance(items, list):
        items = [items]
    labels = {_one(item) for item in items if not (isinstance(item, str) and not item.strip())}
    if not labels:
        raise SkipExampleError("missing_label", "the label list is empty")
    return tuple(sorted(labels))
