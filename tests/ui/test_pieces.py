"""The dashboard's pieces on their own: the session cookie, paths, forms, charts."""

from __future__ import annotations

import time

from app.ui import charts
from app.ui.routes.session import safe_next
from app.ui.session import (
    SESSION_SECONDS,
    UiSession,
    csrf_token,
    decode_session,
    encode_session,
    token_matches,
)
from app.ui.views.jobs import request_of, typed

SECRET = b"s" * 32


def test_a_session_cookie_round_trips_and_resists_tampering() -> None:
    session = UiSession.new("proj_1", "key_1", "ab" * 32)
    value = encode_session(SECRET, session)
    assert decode_session(SECRET, value) == session
    assert decode_session(b"t" * 32, value) is None  # another server's secret
    payload, _, signature = value.partition(".")
    assert decode_session(SECRET, payload[:-2] + "xx." + signature) is None
    assert decode_session(SECRET, payload) is None
    assert decode_session(SECRET, "") is None
    later = time.time() + SESSION_SECONDS + 1
    assert decode_session(SECRET, value, now=later) is None  # expired


def test_csrf_tokens_are_per_session_and_purpose() -> None:
    token = csrf_token(SECRET, "nonce-a")
    assert token_matches(SECRET, "nonce-a", token)
    assert not token_matches(SECRET, "nonce-b", token)
    assert not token_matches(SECRET, "nonce-a", token, "signin")
    assert not token_matches(SECRET, "nonce-a", None)


def test_sign_in_goes_back_only_to_dashboard_paths() -> None:
    assert safe_next("/ui/jobs?status=running") == "/ui/jobs?status=running"
    for hostile in ("https://evil.example/ui", "//evil.example/ui", "/ui\\@evil", "/v1/x", ""):
        assert safe_next(hostile) == "/ui"


def test_the_job_form_reads_values_as_a_client_sends_them() -> None:
    assert typed("12") == 12 and typed("0.001") == 0.001 and typed("true") is True
    assert typed("huber") == "huber"
    body, errors = request_of(
        {
            "dataset_id": "ds_1",
            "backbone": "tiny_image",
            "model_name": "m",
            "method": "full",
            "hp_epochs": "3",
            "hp_learning_rate": "auto",
            "hp_batch_size": "",
            "seed": "7",
        }
    )
    assert body is not None and not errors
    assert body.hyperparameters == {"epochs": 3} and body.seed == 7
    body, errors = request_of({"dataset_id": "ds_1", "backbone": "b", "model_name": "no spaces"})
    assert body is None and errors[0]["field"] == "model_name"


def test_charts_geometry() -> None:
    bars = charts.label_bars({"cat": 30, "dog": 10, "eel": 1}, minimum=2)
    assert [b.label for b in bars.bars] == ["cat", "dog", "eel"]
    assert bars.bars[0].width > bars.bars[1].width > bars.bars[2].width
    assert bars.bars[2].kind == "low" and bars.marker is not None
    heat = charts.heatmap(["a", "b"], [[3, 1], [0, 4]])
    assert heat.total == 8 and heat.correct == 7
    cells = {(c.row, c.col): c for c in heat.cells}
    assert cells[(0, 0)].text == "3" and cells[(1, 0)].fill == "#f8fafc"  # empty cell
    assert cells[(1, 1)].dark and not cells[(0, 1)].dark
    diagram = charts.reliability(
        [("before", "before", [{"confidence": 0.9, "accuracy": 0.5, "count": 10}])]
    )
    point = diagram.series[0].points[0]
    assert point.x > point.y  # over-confident: right of and below the diagonal's point
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]


def test_every_page_and_asset_ships_in_the_package() -> None:
    """pyproject's package-data names every template and static file (a wheel without
    them serves blank pages), and no asset comes from outside the package."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["app.ui"]
    package = root / "app" / "ui"
    shipped = {p for pattern in patterns for p in package.glob(pattern)}
    served = {p for folder in ("templates", "static") for p in (package / folder).rglob("*")}
    assert {p for p in served if p.is_file()} <= shipped
    for path in served:
        if path.suffix in (".html", ".css", ".js"):
            text = path.read_text()
            assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
            assert "https://" not in text and "//cdn" not in text, path


def _render(template: str, context: dict[str, object]) -> str:
    from app.ui.render import env

    return env.get_template(template).render(
        {"path": "/ui/x", "project": None, "csrf": "t", **context}
    )


def test_regression_and_failed_datasets_render() -> None:
    from datetime import UTC, datetime

    from app.datasets.schemas import DatasetRead
    from app.ui.views import datasets

    now = datetime.now(UTC)
    stats = {
        "count": 40, "min": 1.0, "max": 9.0, "mean": 5.0, "std": 2.0, "median": 5.0,
        "distinct": 30, "histogram": {"edges": [1.0, 5.0, 9.0], "counts": [25, 15]},
        "outliers": {"count": 1, "threshold": 5.0,
                     "listed": [{"source": "line 3", "value": 90.0, "robust_z": 9.0}]},
    }  # fmt: skip
    by_source = {"line 4": [1.0], "line 9": [2.0]}
    conflict = {"sources": ["line 4", "line 9"], "count": 2, "target_by_source": by_source}
    regression = DatasetRead(
        id="ds_r", name="prices", task="text_regression", multilabel=False, status="ready",
        created_at=now, finished_at=now, num_examples=40, labels=[], label_counts={},
        targets=["price"], sha256="ab" * 32, error=None,
        report={"targets": ["price"], "target_stats": {"price": stats}, "warnings": [],
                "conflicting_duplicates": [conflict]},
    )  # fmt: skip
    html = _render("dataset.html", datasets.build(regression, None))
    assert "Target price" in html and "line 3" in html and "line 9" in html
    failed = regression.model_copy(
        update={"status": "failed", "report": None, "error": {"code": "no_examples",
                                                               "message": "nothing usable"}}
    )  # fmt: skip
    assert "nothing usable" in _render("dataset.html", datasets.build(failed, None))


def test_regression_and_multilabel_versions_render() -> None:
    from datetime import UTC, datetime

    from app.registry.schemas import ModelDetail, VersionRead
    from app.ui.views import models

    now = datetime.now(UTC)
    model = ModelDetail(
        name="m", task="text_regression", latest_version=1, aliases={"production": 1},
        created_at=now, versions=[],
    )  # fmt: skip
    version = VersionRead(
        name="m", version=1, status="ready", task="text_regression", labels=["price"],
        backbone="tiny_text", job_id="job_1", dataset_id="ds_r", runtime="torch",
        method_chosen="linear_probe", method_reason=None, created_at=now,
        metrics={"rmse": 1.5, "mae": 1.0, "r2": 0.8, "spearman": 0.9,
                 "predicted_vs_true": [[1.0, 1.2], [3.0, 2.5]],
                 "intervals": {"coverage": 0.9, "empirical_coverage": 0.88}},
        manifest={"dataset_sha256": "cd" * 32, "versions": {"torch": "2"}},
    )  # fmt: skip
    html = _render("version.html", models.version_page(model, version))
    assert "RMSE" in html and "Predicted against true" in html and "88.0%" in html
    labels = ["a", "b"]
    multilabel = version.model_copy(
        update={"task": "image_classification", "labels": labels,
                "metrics": {"accuracy": 0.5, "macro_f1": 0.6,
                            "per_label": {x: {"precision": 1.0, "recall": 0.5, "f1": 0.6,
                                              "support": 3} for x in labels}}}
    )  # fmt: skip
    html = _render("version.html", models.version_page(model, multilabel))
    assert 'data-test="per-label"' in html and 'data-test="confusion-matrix"' not in html
