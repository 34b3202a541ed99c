"""What a training plan needs to know about a dataset's inputs, measured once at ingest.

The numbers go into the manifest and the audit report alike, so the API (a job's dry run) and
the worker (the real run) plan from the same values.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

# Words and punctuation marks: what subword tokenizers split further, so a lower bound on a
# text's token count that needs no tokenizer (the dataset does not know the backbone).
PRE_TOKEN = re.compile(r"\w+|[^\w\s]")


class _Input(Protocol):
    @property
    def text(self) -> str | None: ...

    @property
    def min_side(self) -> int | None: ...


@dataclass(frozen=True)
class InputStats:
    image_min_side: int | None = None  # median over images of min(width, height), pixels
    text_tokens_p95: int | None = None  # 95th percentile of pre-token counts per text

    def to_dict(self) -> dict[str, int]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "InputStats":
        """Missing or malformed entries (a dataset stored before these were measured) are
        unknown, and a plan falls back to the backbone's defaults for them."""
        values = values or {}
        known = {}
        for field in fields(cls):
            value = values.get(field.name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                known[field.name] = value
        return cls(**known)


def pre_tokens(text: str) -> int:
    return len(PRE_TOKEN.findall(text))


def input_stats(examples: Iterable[_Input]) -> InputStats:
    sides, lengths = [], []
    for example in examples:
        if example.min_side is not None:
            sides.append(example.min_side)
        if example.text is not None:
            lengths.append(pre_tokens(example.text))
    return InputStats(
        image_min_side=int(np.median(sides)) if sides else None,
        # "higher": an actual count of some text, never an interpolation below it.
        text_tokens_p95=int(np.percentile(lengths, 95, method="higher")) if lengths else None,
    )
