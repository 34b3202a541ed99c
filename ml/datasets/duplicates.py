"""Finding duplicates by content (an image's bytes, a text's normalized form).

- The same content with the same labels is an *exact* duplicate: only the first copy is kept,
  since extra copies only over-weight it and leak between training and validation splits.
- The same content with different labels is a *conflicting* duplicate: every labelling is kept
  and reported, because only the user knows which label is right (or whether several are).
"""

from dataclasses import dataclass, field

from ml.datasets.records import Candidate


@dataclass
class Duplicates:
    kept: list[Candidate] = field(default_factory=list)
    exact: list[list[Candidate]] = field(default_factory=list)  # same content and labels
    conflicting: list[list[Candidate]] = field(default_factory=list)  # same content only

    @property
    def removed(self) -> int:
        return sum(len(group) - 1 for group in self.exact)


def deduplicate(candidates: list[Candidate]) -> Duplicates:
    """Keep the first of each (content, labels) pair, in upload order."""
    by_key: dict[str, dict[tuple[str, ...], list[Candidate]]] = {}
    result = Duplicates()
    for candidate in candidates:
        labellings = by_key.setdefault(candidate.key, {})
        same = labellings.setdefault(candidate.labels, [])
        if not same:
            result.kept.append(candidate)
        same.append(candidate)
    for labellings in by_key.values():
        result.exact.extend(group for group in labellings.values() if len(group) > 1)
        if len(labellings) > 1:
            result.conflicting.append([group[0] for group in labellings.values()])
    return result
