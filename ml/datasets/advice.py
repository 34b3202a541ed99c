"""Actionable warnings every task's report shares: duplicates, skips and the content itself.

The task adds its own (imbalanced labels, a nearly constant target, ...) from ``Task.audit``.
"""

from collections.abc import Sequence

from ml.datasets.duplicates import Duplicates
from ml.datasets.records import Candidate, SkipLog

SKIPPED_FRACTION = 0.1
SHORT_TEXT_WORDS = 3
SHORT_TEXT_FRACTION = 0.1
TINY_IMAGE_PIXELS = 32

Warning = dict[str, str]


def warn(code: str, message: str) -> Warning:
    return {"code": code, "message": message}


def some(items: Sequence[str], shown: int = 3) -> str:
    quoted = ", ".join(repr(item) for item in items[:shown])
    return quoted + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _duplicates(duplicates: Duplicates, noun: str) -> list[Warning]:
    warnings = []
    if duplicates.conflicting:
        sources = [" vs ".join(c.source for c in group[:2]) for group in duplicates.conflicting]
        warnings.append(
            warn(
                "conflicting_duplicates",
                f"{len(duplicates.conflicting)} item(s) appear with different {noun}, "
                f"e.g. {some(sources, 2)}. Fix or remove them: they are kept as given, and "
                "contradicting examples cap the accuracy any model can reach.",
            )
        )
    if duplicates.exact:
        sources = [group[1].source for group in duplicates.exact]
        warnings.append(
            warn(
                "exact_duplicates",
                f"{duplicates.removed} duplicate copies were removed (the first copy of "
                f"each is kept), e.g. {some(sources)}.",
            )
        )
    return warnings


def _skipped(skips: SkipLog, kept: int) -> list[Warning]:
    seen = skips.total + kept
    if not skips.total or skips.total < SKIPPED_FRACTION * seen:
        return []
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    return [
        warn(
            "many_skipped",
            f"{skips.total} of {seen} items were skipped ({reasons}). See 'skipped' for "
            "which and why, fix them and upload again to use them.",
        )
    ]


def _content(kept: list[Candidate]) -> list[Warning]:
    short = [
        c.source for c in kept if c.text is not None and len(c.text.split()) < SHORT_TEXT_WORDS
    ]
    tiny = [c.source for c in kept if c.min_side is not None and c.min_side < TINY_IMAGE_PIXELS]
    warnings = []
    if short and len(short) >= SHORT_TEXT_FRACTION * len(kept):
        warnings.append(
            warn(
                "short_texts",
                f"{len(short)} texts have fewer than {SHORT_TEXT_WORDS} words "
                f"(e.g. {some(short)}). Very short texts carry little signal: check that "
                "text_column names the right column.",
            )
        )
    if tiny:
        warnings.append(
            warn(
                "tiny_images",
                f"{len(tiny)} images are smaller than {TINY_IMAGE_PIXELS} px on a side "
                f"(e.g. {some(tiny)}). They are upscaled to the model's input size and carry "
                "little detail; use larger originals if you have them.",
            )
        )
    return warnings


def advise(
    kept: list[Candidate], duplicates: Duplicates, skips: SkipLog, noun: str
) -> list[Warning]:
    """``noun`` is what a conflicting duplicate differs in: "labels", "targets"."""
    return [*_duplicates(duplicates, noun), *_skipped(skips, len(kept)), *_content(kept)]
