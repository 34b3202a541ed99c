"""Finding duplicates by content (an image's bytes, a text's normalized form).

- The same content with the same target is an *exact* duplicate: only the first copy is kept,
  since extra copies only over-weight it and leak between training and validation splits.
- The same content with different targets (labels, or numbers) is a *conflicting* duplicate:
  every one is kept and reported, because only the user knows which is right (or whether
  several labels are).
"""

from dataclasses import dataclass, field
from typing import Any

from ml.datasets.records import Candidate


@dataclass
class Duplicates:
    kept: list[Candidate] = field(default_factory=list)
    exact: list[list[Candidate]] = field(default_factory=list)  # same content and target
    conflicting: list[list[Candidate]] = field(default_factory=list)  # same content only

    @property
    def removed(self) -> int:
        return sum(len(group) - 1 for group in self.exact)


def deduplicate(candidates: list[Candidate]) -> Duplicates:
    """Keep the first of each (content, target) pair, in upload order."""
    by_key: dict[str, dict[tuple[Any, ...], list[Candidate]]] = {}
    result = Duplicates()
    for candidate in candidates:
        targets = by_key.setdefault(candidate.key, {})
        same = targets.setdefault(candidate.target, [])
        if not same:
            result.kept.append(candidate)
        same.append(candidate)
    for targets in by_key.values():
        result.exact.extend(group for group in targets.values() if len(group) > 1)
        if len(targets) > 1:
            result.conflicting.append([group[0] for group in targets.values()])
    return result
