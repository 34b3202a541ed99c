"""OpenAPI links: how the answer of one operation addresses the next (a created dataset's id is
the `dataset_id` of GET /v1/datasets/{dataset_id}, ...). Clients and API testers such as
schemathesis' stateful phase follow them; they are declared here, in one table, and added to
the generated schema once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

BODY_ID = "$response.body#/id"


@dataclass(frozen=True)
class Link:
    name: str
    source: tuple[str, str]  # (method, path)
    statuses: tuple[str, ...]
    target: tuple[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    description: str = ""


DATASET = "/v1/datasets/{dataset_id}"
JOB = "/v1/jobs/{job_id}"
MODEL = "/v1/models/{name}"
VERSION = "/v1/models/{name}/versions/{version}"
ALIAS = "/v1/models/{name}/aliases/{alias}"

LINKS: tuple[Link, ...] = (
    Link("GetDataset", ("POST", "/v1/datasets"), ("201", "202"), ("GET", DATASET),
         {"dataset_id": BODY_ID}, "The dataset just uploaded, and its processing status."),
    Link("DeleteDataset", ("POST", "/v1/datasets"), ("201", "202"), ("DELETE", DATASET),
         {"dataset_id": BODY_ID}),
    Link("GetFirstDataset", ("GET", "/v1/datasets"), ("200",), ("GET", DATASET),
         {"dataset_id": "$response.body#/data/0/id"}),
    Link("GetJob", ("POST", "/v1/jobs"), ("201",), ("GET", JOB), {"job_id": BODY_ID},
         "The job just created: poll it until it is succeeded, failed or cancelled."),
    Link("GetJobEvents", ("POST", "/v1/jobs"), ("201",), ("GET", f"{JOB}/events"),
         {"job_id": BODY_ID}),
    Link("CancelJob", ("POST", "/v1/jobs"), ("201",), ("POST", f"{JOB}/cancel"),
         {"job_id": BODY_ID}),
    Link("GetFirstJob", ("GET", "/v1/jobs"), ("200",), ("GET", JOB),
         {"job_id": "$response.body#/data/0/id"}),
    Link("GetCancelledJob", ("POST", f"{JOB}/cancel"), ("200",), ("GET", JOB),
         {"job_id": BODY_ID}),
    Link("GetJobModel", ("GET", JOB), ("200",), ("GET", MODEL),
         {"name": "$response.body#/model_name"}, "The model the job trains into."),
    Link("GetFirstModel", ("GET", "/v1/models"), ("200",), ("GET", MODEL),
         {"name": "$response.body#/data/0/name"}),
    Link("GetNewestVersion", ("GET", MODEL), ("200",), ("GET", VERSION),
         {"name": "$response.body#/name", "version": "$response.body#/versions/0/version"},
         "The newest version (versions are listed newest first)."),
    Link("DeleteNewestVersion", ("GET", MODEL), ("200",), ("DELETE", VERSION),
         {"name": "$response.body#/name", "version": "$response.body#/versions/0/version"}),
    Link("DownloadVersion", ("GET", VERSION), ("200",), ("GET", f"{VERSION}/artifact"),
         {"name": "$response.body#/name", "version": "$response.body#/version"},
         "The version's artifact, as a zip."),
    Link("SetAlias", ("GET", VERSION), ("200",), ("PUT", ALIAS),
         {"name": "$response.body#/name"}),
    Link("GetAliasedVersion", ("PUT", ALIAS), ("200",), ("GET", VERSION),
         {"name": "$response.body#/name", "version": "$response.body#/version"}),
    Link("DeleteAlias", ("PUT", ALIAS), ("200",), ("DELETE", ALIAS),
         {"name": "$response.body#/name", "alias": "$response.body#/alias"}),
)  # fmt: skip


def add_links(schema: dict[str, Any], links: tuple[Link, ...] = LINKS) -> dict[str, Any]:
    """Add `links` to the responses of `schema` (in place), naming targets by operationId."""
    paths = schema["paths"]
    for link in links:
        method, path = link.source
        target_method, target_path = link.target
        target = paths[target_path][target_method.lower()]["operationId"]
        for status in link.statuses:
            response = paths[path][method.lower()]["responses"].setdefault(
                status, {"description": "Successful Response"}
            )
            entry: dict[str, Any] = {"operationId": target, "parameters": link.parameters}
            if link.description:
                entry["description"] = link.description
            response.setdefault("links", {})[link.name] = entry
    return schema


def install_links(app: FastAPI) -> None:
    """Make `app.openapi()` return the generated schema with LINKS added."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
