"""bench/accuracy_report.py: the candidates tables and the verdict against each goal."""

from bench.accuracy_report import (
    CV_BASELINE,
    Row,
    candidate_tables,
    candidates_table,
    kept_versus_probe,
    verdict,
)


def _candidate(name: str, status: str, f1: float, seconds: float = 2.0) -> dict:
    return {
        "name": name, "description": f"{name} model", "status": status,
        "validation": {"val_loss": 0.5, "val_accuracy": f1 + 0.01, "val_macro_f1": f1},
        "seconds": seconds, "reason": f"{name} reason",
    }  # fmt: skip


def _row(
    data: str, method: str, accuracy: float, train_s: float = 10.0, kept: str | None = None,
    candidates: list[dict] | None = None,
) -> Row:  # fmt: skip
    kept = kept or ("-" if ":" in method else method)
    return Row(data, method, kept, train_s, 1.0, accuracy, accuracy, None, candidates or [])


def test_verdict_holds_auto_to_each_datasets_goal_and_the_time_ratio() -> None:
    won = [_candidate("classical", "lost", 0.80), _candidate("linear_probe", "lost", 0.85),
           _candidate("lp_ft", "kept", 0.90)]  # fmt: skip
    rows = [
        _row("fashion_mnist", "baseline: features + LR (C=1)", 0.84),
        _row("fashion_mnist", CV_BASELINE, 0.85, train_s=100.0),
        _row("fashion_mnist", "linear_probe", 0.845),
        _row("fashion_mnist", "auto", 0.88, train_s=350.0, kept="lp_ft", candidates=won),
        _row("digits", CV_BASELINE, 0.95, train_s=20.0),
        _row("digits", "classical: raw pixels + LR (C by 5-fold CV)", 0.97),
        _row("digits", "auto", 0.94, train_s=100.0, kept="linear_probe"),
        _row("tweets", CV_BASELINE, 0.70),
        _row("tweets", "linear_probe", 0.68),
    ]
    lines = verdict(rows, {"fashion_mnist": 2.0, "digits": 0.0, "tweets": 1.0})
    assert lines == [
        "verdict: auto against features + LR (C by 5-fold CV)",
        "  fashion_mnist: +3.0 pts (goal >= +2: met); 3.5x its train time (goal <= 4: met); "
        "kept lp_ft, kept >= probe on validation; others: linear_probe -0.5 pts",
        "  digits: -1.0 pts (goal >= +0: NOT met); 5.0x its train time (goal <= 4: NOT met); "
        "kept linear_probe, kept vs probe on validation: not reported",
        "  tweets: auto not run; others: linear_probe -2.0 pts",
        "goals met: 2 of 4 (NOT met: digits accuracy, digits time); "
        "kept >= probe on validation: 1 of 1",
    ]


def test_kept_versus_probe_compares_validation_headlines() -> None:
    lost = [_candidate("linear_probe", "lost", 0.85), _candidate("classical", "kept", 0.80)]
    assert kept_versus_probe(_row("d", "auto", 0.9, candidates=lost)) is False
    alone = [_candidate("linear_probe", "kept", 0.85)]
    assert kept_versus_probe(_row("d", "auto", 0.9, candidates=alone)) is True
    assert kept_versus_probe(_row("d", "auto", 0.9)) is None


def test_candidates_table_shows_scores_costs_and_the_plans_estimate() -> None:
    candidates = [_candidate("classical", "kept", 0.9123, 1.25), _candidate("lp_ft", "skipped", 0)]
    candidates[1]["validation"] = {}
    row = _row("digits", "auto", 0.9, kept="classical", candidates=candidates)
    row.plan = {"candidates": [{"name": "classical", "estimated_seconds": 3.0}]}
    table = candidates_table(row)
    assert table is not None
    lines = table.splitlines()
    assert lines[0].startswith("| candidate | status | val macro-F1 | validation | seconds |")
    assert lines[2] == (
        "| classical | kept | 0.9123 | val_loss 0.5000, val_accuracy 0.9223 | 1.2 | 3.0 | "
        "classical reason | classical model |"
    )
    assert lines[3].startswith("| lp_ft | skipped | - | - | 2.0 | - |")


def test_rows_without_candidates_print_no_table() -> None:
    rows = [_row("digits", CV_BASELINE, 0.9), _row("digits", "auto", 0.9, kept="linear_probe")]
    assert candidates_table(rows[1]) is None
    assert candidate_tables(rows) == ""
