"""Which candidate a job keeps, and why (in words).

`linear_probe` and `full` keep what was asked for; `auto` keeps the best candidate on
validation by the task's score (the cheaper one on a tie), so it is never worse there than the
linear probe or the classical model.
"""

from ml.tasks import Task
from ml.training.search import Candidate, best_scored, pick


def _score(task: Task, candidate: Candidate) -> str:
    return f"{task.headline_label} {candidate.validation[task.headline]:.4f}"


def decide(
    method: str, task: Task, candidates: list[Candidate], probe_l2: float, noise: float = 0.0
) -> tuple[Candidate, str]:
    """(the kept candidate, why). `candidates` are in the order they were tried (cheapest
    first); `noise` is the standard error of a validation score (auto's one-SE rule)."""
    named = {c.name: c for c in candidates}
    if method == "linear_probe":
        return named["linear_probe"], (
            f"linear_probe was requested (L2 {probe_l2:g} chosen by cross-validation)"
        )
    if method == "full":
        tuned = named["lp_ft"]
        return tuned, (
            "full was requested: fine-tuned every weight from the linear probe's head (LP-FT); "
            + tuned.reason
        )
    kept = pick(task, candidates, noise)
    top = best_scored(task, candidates)
    others = "; ".join(_compared(task, c) for c in candidates if c is not kept)
    if top is kept:
        return kept, f"best on validation ({_score(task, kept)}) of the candidates; {others}"
    return kept, (
        f"within one standard error ({noise:.4f}) of the best on validation ({top.name}, "
        f"{_score(task, top)}) and cheaper ({_score(task, kept)}); {others}"
    )


def _compared(task: Task, candidate: Candidate) -> str:
    """e.g. "linear_probe lost (macro-F1 0.6615)", "lp_ft skipped: <why>"."""
    text = f"{candidate.name} {candidate.status}"
    if candidate.validation:
        text += f" ({_score(task, candidate)})"
    if candidate.reason and candidate.status in ("abandoned", "skipped"):
        text += f": {candidate.reason}"
    return text
