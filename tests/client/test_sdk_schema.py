"""The SDK's types against the live /openapi.json, so the two cannot drift: every field a
type declares is in its component schema, every field the schema requires is declared, and a
field the SDK requires is one the server always sends (required, never null)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import hone
from tests.client.conftest import Live

# SDK type -> its component in /openapi.json.
COMPONENTS: dict[type[BaseModel], str] = {
    hone.Dataset: "DatasetRead",
    hone.Job: "JobRead",
    hone.JobPlan: "JobPlanRead",
    hone.Event: "EventRead",
    hone.Model: "ModelRead",
    hone.ModelDetail: "ModelDetail",
    hone.VersionSummary: "VersionSummary",
    hone.ModelVersion: "VersionRead",
    hone.VersionRef: "ModelVersionRef",
    hone.LabelScore: "LabelScore",
    hone.PredictResponse: "PredictResponse",
}
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code", "errors")


@pytest.fixture(scope="module")
def schemas(live: Live) -> dict[str, Any]:
    spec = httpx.get(f"{live.url}/openapi.json", timeout=30).json()
    components: dict[str, Any] = spec["components"]["schemas"]
    return components


def nullable(prop: dict[str, Any]) -> bool:
    variants = prop.get("anyOf") or prop.get("oneOf") or [prop]
    return any(v.get("type") == "null" or "null" in (v.get("type") or []) for v in variants)


def check(model: type[BaseModel], schema: dict[str, Any], name: str) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    declared = set(model.model_fields)
    assert declared <= set(props), (
        f"{model.__name__} declares {declared - set(props)}, not in {name}"
    )
    assert required <= declared, (
        f"{name} requires {required - declared}, {model.__name__} lacks them"
    )
    for field, info in model.model_fields.items():
        if info.is_required():
            assert field in required, f"{model.__name__}.{field} is required, {name} may omit it"
            assert not nullable(props[field]), f"{model.__name__}.{field} is required, may be null"


@pytest.mark.parametrize("model", list(COMPONENTS), ids=lambda m: m.__name__)
def test_type_matches_its_component(model: type[BaseModel], schemas: dict[str, Any]) -> None:
    name = COMPONENTS[model]
    check(model, schemas[name], name)


def test_prediction_covers_every_task_s_prediction(schemas: dict[str, Any]) -> None:
    """hone.Prediction is one type for the union the API documents: every variant's fields."""
    items = schemas["PredictResponse"]["properties"]["predictions"]["items"]
    refs = [v["$ref"].rsplit("/", 1)[-1] for v in items.get("anyOf") or items.get("oneOf")]
    assert {"ClassificationPrediction", "RegressionPrediction"} <= set(refs)
    declared = set(hone.Prediction.model_fields)
    variant_fields: set[str] = set()
    for ref in refs:
        props = set(schemas[ref]["properties"])
        variant_fields |= props
        assert props <= declared, f"{ref} has {props - declared}, hone.Prediction lacks them"
    assert declared == variant_fields
    assert not any(f.is_required() for f in hone.Prediction.model_fields.values())


def test_errors_keep_every_field_of_a_problem(schemas: dict[str, Any]) -> None:
    problem = schemas["Problem"]
    assert set(problem["properties"]) == set(PROBLEM_FIELDS)
    error = hone.NotFound(404, title="t", detail="d", type="x", code="c", errors=[])
    for field in PROBLEM_FIELDS:
        assert hasattr(error, field)


def test_backbone_matches_the_catalog_s_objects(live: Live) -> None:
    """GET /v1/backbones documents its items as plain objects: hold hone.Backbone to the
    objects the live server sends instead."""
    with hone.Client(live.url, live.key) as client:
        backbones = list(client.backbones.list())
    assert backbones
    declared = set(hone.Backbone.model_fields)
    sent: set[str] = set()
    for backbone in backbones:
        keys = set(backbone.model_dump(exclude_unset=True)) | set(backbone.model_extra or {})
        assert keys <= declared, f"the server sends {keys - declared}, hone.Backbone lacks them"
        sent |= keys
    assert declared == sent
