"""The registry through HTTP (models, versions, aliases, deletion) and `resolve_version`,
which the prediction endpoints use to pick a version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.keys import authenticate
from app.errors import Conflict, NotFound
from app.models import ModelVersion, RegisteredModel
from app.registry.service import resolve_version
from tests.app.jobs.flows import auth, problem
from tests.app.registry.conftest import MODEL
from tests.conftest import Stack
from tests.support.db import stack_session
from tests.support.storage import version_dir


def _project_id(session: Session, stack: Stack) -> str:
    project = authenticate(session, stack.key_a)
    assert project is not None
    return project.id


def _resolve(stack: Stack, version: int | None = None, alias: str | None = None) -> int:
    with stack_session(stack) as session:
        project_id = _project_id(session, stack)
        _, row = resolve_version(session, project_id, MODEL, version=version, alias=alias)
        return row.version


def _put_alias(stack: Stack, alias: str, version: int) -> Any:
    return stack.client.put(
        f"/v1/models/{MODEL}/aliases/{alias}", headers=stack.headers(), json={"version": version}
    )


def test_jobs_into_one_model_get_distinct_consecutive_versions(
    stack: Stack, two_jobs: list[dict[str, Any]]
) -> None:
    assert [j["status"] for j in two_jobs] == ["succeeded", "succeeded"]
    versions = sorted(j["model_version"]["version"] for j in two_jobs)
    assert versions == [1, 2]
    detail = stack.client.get(f"/v1/models/{MODEL}", headers=stack.headers()).json()
    assert detail["name"] == MODEL and detail["object"] == "model"
    assert detail["task"] == "text_classification" and detail["latest_version"] == 2
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert {v["job_id"] for v in detail["versions"]} == {j["id"] for j in two_jobs}
    assert all(v["status"] == "ready" and 0 <= v["accuracy"] <= 1 for v in detail["versions"])
    listed = stack.client.get("/v1/models?limit=100", headers=stack.headers()).json()
    assert listed["object"] == "list"
    mine = [m for m in listed["data"] if m["name"] == MODEL]
    assert mine == [{k: detail[k] for k in ("name", "object", "task", "latest_version",
                                            "aliases", "created_at")}]  # fmt: skip


def test_aliases_steer_version_resolution(stack: Stack, two_jobs: list[dict[str, Any]]) -> None:
    assert _resolve(stack) == 2  # no alias: the newest ready version
    assert _put_alias(stack, "production", 1).json() == {
        "name": MODEL, "object": "model.alias", "alias": "production", "version": 1,
    }  # fmt: skip
    assert _put_alias(stack, "canary", 2).status_code == 200
    assert _resolve(stack) == 1  # `production` wins over "newest"
    assert _resolve(stack, alias="canary") == 2
    assert _resolve(stack, version=2, alias="production") == 2  # an explicit version wins
    model = stack.client.get(f"/v1/models/{MODEL}", headers=stack.headers()).json()
    assert model["aliases"] == {"canary": 2, "production": 1}
    assert _put_alias(stack, "production", 2).json()["version"] == 2  # moving it
    assert _resolve(stack) == 2
    gone = stack.client.delete(f"/v1/models/{MODEL}/aliases/canary", headers=stack.headers())
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    problem(stack.client.delete(f"/v1/models/{MODEL}/aliases/canary", headers=stack.headers()),
            404, "alias_not_found")  # fmt: skip
    problem(_put_alias(stack, "production", 9), 404, "version_not_found")
    with pytest.raises(NotFound):
        _resolve(stack, alias="canary")
    with pytest.raises(NotFound):
        _resolve(stack, version=9)
    bad = _put_alias(stack, "-bad alias", 1)
    assert bad.status_code == 422
    stack.client.delete(f"/v1/models/{MODEL}/aliases/production", headers=stack.headers())


@pytest.fixture
def registering_version(stack: Stack, two_jobs: list[dict[str, Any]]) -> Iterator[int]:
    """A version row a worker is still registering (version 50 of MODEL)."""
    with stack_session(stack) as session:
        project_id = _project_id(session, stack)
        model = session.query(RegisteredModel).filter_by(project_id=project_id, name=MODEL).one()
        row = ModelVersion(
            model_id=model.id, version=50, status="registering", task=model.task,
            backbone="tiny_text", artifact_uri="/nonexistent",
        )  # fmt: skip
        session.add(row)
    yield 50
    with stack_session(stack) as session:
        session.query(ModelVersion).filter_by(id=row.id).delete()


def test_a_version_that_is_not_ready_cannot_be_aliased_served_or_deleted(
    stack: Stack, registering_version: int
) -> None:
    problem(_put_alias(stack, "production", registering_version), 409, "version_not_ready")
    with pytest.raises(Conflict) as raised:
        _resolve(stack, version=registering_version)
    assert raised.value.code == "version_not_ready"
    resp = stack.client.delete(
        f"/v1/models/{MODEL}/versions/{registering_version}", headers=stack.headers()
    )
    problem(resp, 409, "version_not_ready")
    assert _resolve(stack) == 2  # "newest ready" skips it
    predict = stack.client.post(
        f"/v1/models/{MODEL}/predict?version={registering_version}",
        headers=stack.headers(),
        json={"inputs": ["is this served?"]},
    )
    problem(predict, 409, "version_not_ready")


def test_a_model_without_ready_versions_cannot_serve(stack: Stack) -> None:
    with stack_session(stack) as session:
        session.add(RegisteredModel(project_id=_project_id(session, stack), name="empty",
                                    task="text_classification"))  # fmt: skip
    with stack_session(stack) as session:
        with pytest.raises(Conflict) as raised:
            resolve_version(session, _project_id(session, stack), "empty", version=None,
                            alias=None)  # fmt: skip
        assert raised.value.code == "no_ready_version"
        with pytest.raises(NotFound):
            resolve_version(session, _project_id(session, stack), "nope", version=None,
                            alias=None)  # fmt: skip
    predict = stack.client.post(
        "/v1/models/empty/predict", headers=stack.headers(), json={"inputs": ["anyone?"]}
    )
    problem(predict, 409, "no_ready_version")
    listed = stack.client.get("/v1/models?limit=100", headers=stack.headers()).json()["data"]
    empty = next(m for m in listed if m["name"] == "empty")
    assert empty["latest_version"] is None and empty["aliases"] == {}


class _RecordingCache:
    def __init__(self) -> None:
        self.evicted: list[str] = []

    def evict(self, version_id: str) -> None:
        self.evicted.append(version_id)


def test_deleting_a_version_removes_artifact_aliases_and_cached_model(
    stack: Stack, two_jobs: list[dict[str, Any]]
) -> None:
    assert _put_alias(stack, "production", 1).status_code == 200
    with stack_session(stack) as session:
        version_id, artifact = session.execute(
            select(ModelVersion.id, ModelVersion.artifact_uri)
            .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
            .where(RegisteredModel.project_id == _project_id(session, stack),
                   RegisteredModel.name == MODEL, ModelVersion.version == 1)
        ).one()  # fmt: skip
    artifact_dir = version_dir(stack.backend, artifact)
    assert (artifact_dir / "model.safetensors").is_file()
    state = stack.client.app.state  # type: ignore[attr-defined]
    previous = getattr(state, "model_cache", None)
    state.model_cache = cache = _RecordingCache()
    try:
        resp = stack.client.delete(f"/v1/models/{MODEL}/versions/1", headers=stack.headers())
    finally:
        state.model_cache = previous
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "name": MODEL, "object": "model.version", "version": 1, "deleted": True,
        "aliases_removed": ["production"],
    }  # fmt: skip
    assert cache.evicted == [version_id]
    assert not artifact_dir.exists()
    problem(stack.client.get(f"/v1/models/{MODEL}/versions/1", headers=stack.headers()), 404,
            "version_not_found")  # fmt: skip
    model = stack.client.get(f"/v1/models/{MODEL}", headers=stack.headers()).json()
    assert model["aliases"] == {} and [v["version"] for v in model["versions"]] == [2]
    assert _resolve(stack) == 2
    job = next(j for j in two_jobs if j["model_version"]["version"] == 1)
    again = stack.client.get(f"/v1/jobs/{job['id']}", headers=stack.headers()).json()
    assert again["model_version"] is None  # the job's record outlives the version


def test_another_projects_model_is_404_everywhere(
    stack: Stack, two_jobs: list[dict[str, Any]]
) -> None:
    other = auth(stack.key_b)
    for method, path, body in [
        ("GET", f"/v1/models/{MODEL}", None),
        ("GET", f"/v1/models/{MODEL}/versions/2", None),
        ("PUT", f"/v1/models/{MODEL}/aliases/production", {"version": 2}),
        ("DELETE", f"/v1/models/{MODEL}/aliases/production", None),
        ("DELETE", f"/v1/models/{MODEL}/versions/2", None),
    ]:
        resp = stack.client.request(method, path, headers=other, json=body)
        problem(resp, 404, "model_not_found")
    listed = stack.client.get("/v1/models", headers=other).json()["data"]
    assert MODEL not in {m["name"] for m in listed}
    assert stack.client.get(f"/v1/models/{MODEL}/versions/2", headers=stack.headers()).is_success
