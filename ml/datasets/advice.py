"""Actionable warnings for the audit report: what looks wrong and what the user can do."""

from collections.abc import Sequence

from ml.datasets.duplicates import Duplicates
from ml.datasets.records import Candidate, SkipLog

IMBALANCE_RATIO = 3.0  # largest / smallest label count above which training favours the large
SKIPPED_FRACTION = 0.1
SHORT_TEXT_WORDS = 3
SHORT_TEXT_FRACTION = 0.1
TINY_IMAGE_PIXELS = 32

Warning = dict[str, str]


def _warn(code: str, message: str) -> Warning:
    return {"code": code, "message": message}


def _some(items: Sequence[str], shown: int = 3) -> str:
    quoted = ", ".join(repr(item) for item in items[:shown])
    return quoted + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _imbalance(label_counts: dict[str, int]) -> list[Warning]:
    largest = max(label_counts, key=lambda label: label_counts[label])
    smallest = min(label_counts, key=lambda label: label_counts[label])
    ratio = label_counts[largest] / label_counts[smallest]
    if ratio <= IMBALANCE_RATIO:
        return []
    return [
        _warn(
            "imbalanced_labels",
            f"{largest!r} has {label_counts[largest]} examples but {smallest!r} only "
            f"{label_counts[smallest]} ({ratio:.1f}x). Consider collecting more {smallest!r} "
            "examples; until then expect it to be predicted less often.",
        )
    ]


def _too_small(too_small: list[dict[str, object]]) -> list[Warning]:
    if not too_small:
        return []
    names = [f"{entry['label']} ({entry['count']})" for entry in too_small]
    return [
        _warn(
            "labels_too_small",
            f"{len(too_small)} label(s) have fewer than {too_small[0]['minimum']} "
            f"examples: {_some(names)}. Collect more examples of them or remove them; a label "
            "needs examples in both the training and the validation split.",
        )
    ]


def _duplicates(duplicates: Duplicates) -> list[Warning]:
    warnings = []
    if duplicates.conflicting:
        sources = [" vs ".join(c.source for c in group[:2]) for group in duplicates.conflicting]
        warnings.append(
            _warn(
                "conflicting_duplicates",
                f"{len(duplicates.conflicting)} item(s) appear with different labels, "
                f"e.g. {_some(sources, 2)}. Fix or remove them: they are kept as given, and "
                "contradicting examples cap the accuracy any model can reach.",
            )
        )
    if duplicates.exact:
        sources = [group[1].source for group in duplicates.exact]
        warnings.append(
            _warn(
                "exact_duplicates",
                f"{duplicates.removed} duplicate copies were removed (the first copy of "
                f"each is kept), e.g. {_some(sources)}.",
            )
        )
    return warnings


def _skipped(skips: SkipLog, kept: int) -> list[Warning]:
    seen = skips.total + kept
    if not skips.total or skips.total < SKIPPED_FRACTION * seen:
        return []
    reasons = ", ".join(f"{reason}: {n}" for reason, n in skips.counts.most_common())
    return [
        _warn(
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
            _warn(
                "short_texts",
                f"{len(short)} texts have fewer than {SHORT_TEXT_WORDS} words "
                f"(e.g. {_some(short)}). Very short texts carry little signal: check that "
                "text_column names the right column.",
            )
        )
    if tiny:
        warnings.append(
            _warn(
                "tiny_images",
                f"{len(tiny)} images are smaller than {TINY_IMAGE_PIXELS} px on a side "
                f"(e.g. {_some(tiny)}). They are upscaled to the model's input size and carry "
                "little detail; use larger originals if you have them.",
            )
        )
    return warnings


def advise(
    kept: list[Candidate],
    label_counts: dict[str, int],
    too_small: list[dict[str, object]],
    duplicates: Duplicates,
    skips: SkipLog,
) -> list[Warning]:
    return [
        *_imbalance(label_counts),
        *_too_small(too_small),
        *_duplicates(duplicates),
        *_skipped(skips, len(kept)),
        *_content(kept),
    ]
