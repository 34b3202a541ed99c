"""What one text is, for training and serving alike.

Dataset ingestion and the prediction endpoint both pass every text through `clean_text`, so a
text is served exactly as it was trained on: the same stripping, the same checks, the same
character cap (`HONE_MAX_TEXT_CHARS`). Truncation to the model's `max_length` tokens happens
later, in the tokenizer, with the same settings on both sides.
"""

from __future__ import annotations


class TextRejected(ValueError):
    """This one text is unusable: `reason` is a short code, `detail` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def clean_text(value: object, max_chars: int) -> str:
    """The text as the model sees it (surrounding whitespace stripped), or TextRejected."""
    if value is None:
        raise TextRejected("empty_text", "there is no text")
    if not isinstance(value, str):
        raise TextRejected("corrupt", f"the text must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise TextRejected("empty_text", "the text is empty")
    if len(text) > max_chars:
        raise TextRejected(
            "too_large", f"the text has {len(text)} characters; at most {max_chars} are allowed"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # a JSON "\ud800" escape decodes to a lone surrogate
        raise TextRejected("corrupt", "the text contains invalid unicode escapes") from error
    return text
