"""POST /v1/models/{name}/predict: resolve the version, batch, answer as the model's task does
(calibrated top-k labels, or values with conformal intervals)."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.deps import ProjectDep, SettingsDep
from app.errors import PROBLEM_RESPONSES, Overloaded, Unavailable, Unprocessable
from app.inference.batcher import BatcherClosed, QueueFull
from app.inference.cache import ModelLoadError
from app.inference.inputs import MAX_TOP_K, PredictInputs, input_problem, read_inputs
from app.inference.resolution import resolve
from app.inference.schemas import PredictResponse
from app.inference.serving import ModelKey
from ml.inference.errors import InputError
from ml.tasks import PredictOptions, UnknownTask, get_task

router = APIRouter(prefix="/v1/models", tags=["prediction"], responses=PROBLEM_RESPONSES)

_MAX_VERSION = 2**31 - 1  # the registry's integer column
_TOP_K = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_TOP_K,
    "description": "classifiers: how many labels with their probabilities (default 5)",
}
_COVERAGE = {
    "type": "number",
    "exclusiveMinimum": 0,
    "exclusiveMaximum": 1,
    "description": "regression: the prediction interval's coverage (default 0.9)",
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "oneOf": [
                                    {"type": "string"},
                                    {
                                        "type": "object",
                                        "properties": {"image_base64": {"type": "string"}},
                                    },
                                ]
                            },
                        },
                        "top_k": _TOP_K,
                        "coverage": _COVERAGE,
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "top_k": {"type": "string", "pattern": "^[0-9]+$"},
                        "coverage": {"type": "string", "pattern": r"^[0-9]*\.?[0-9]+$"},
                    },
                }
            },
        },
    }
}


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    openapi_extra=_BODY,
    summary="Predict with a model version",
    description="Classifiers answer calibrated probabilities (a label, or every label over "
    "its threshold, with the top_k scores); regression models answer values with a "
    "conformal prediction interval at the requested coverage.",
)
async def predict(
    name: str,
    request: Request,
    project: ProjectDep,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    alias: Annotated[str | None, Query(max_length=100)] = None,
    coverage: Annotated[
        float | None,
        Query(gt=0, lt=1, description="regression: the interval's coverage (default 0.9)"),
    ] = None,
) -> JSONResponse:
    started = time.perf_counter()
    if version is not None and alias is not None:
        # Once, the version was served and the alias never looked at, even a missing one.
        raise Unprocessable(
            "Give ?version= or ?alias=, not both: each names a version on its own.",
            code="version_and_alias",
            errors=[{"field": "alias", "message": "not allowed together with version"}],
        )
    resolved = await resolve(request, project.id, name, version, alias)
    number = resolved.number
    inputs = await read_inputs(request, settings)
    _check_kind(name, resolved.task, inputs)
    cache = request.app.state.model_cache
    label = f"{name}:{number}"
    try:
        key = ModelKey(resolved.version_id, resolved.artifact_uri, label)
        loaded = await cache.get(key)
    except ModelLoadError as exc:
        raise Unavailable(
            f"Model {label} cannot be loaded: {exc}",
            code="model_not_loadable",
            headers={"Retry-After": "5"},
        ) from exc
    if coverage is not None:
        if inputs.coverage is not None:
            raise Unprocessable(
                "Give the coverage once: ?coverage= or in the body, not both.",
                code="coverage_twice",
                errors=[{"field": "coverage", "message": "given in the query and the body"}],
            )
        inputs = dataclasses.replace(inputs, coverage=coverage)
    options = _options(inputs)
    try:
        loaded.predictor.check(options)
    except ValueError as exc:
        raise Unprocessable(
            str(exc),
            code="coverage_unattainable",
            errors=[{"field": "coverage", "message": str(exc)}],
        ) from exc
    try:
        predictions, timing = await loaded.batcher.submit(inputs.items, options)
    except QueueFull as exc:
        request.app.state.metrics.rejected.labels(label).inc()
        raise Overloaded(
            f"Model {label} is at capacity; retry after {exc.retry_after_s:.1f} s.",
            headers={"Retry-After": str(max(1, round(exc.retry_after_s + 0.5)))},
        ) from exc
    except InputError as exc:
        raise input_problem(inputs.field, exc) from exc
    except BatcherClosed as exc:
        raise Unavailable(
            f"Model {label} was unloaded; retry.",
            code="model_unloaded",
            headers={"Retry-After": "1"},
        ) from exc
    elapsed = time.perf_counter() - started
    request.app.state.metrics.predict_latency.labels(label).observe(elapsed)
    body = {"model": {"name": name, "version": number}, "predictions": predictions}
    return JSONResponse(
        body,
        headers={
            "X-Queue-Time-Ms": f"{timing.queue_ms:.2f}",
            "X-Inference-Time-Ms": f"{timing.inference_ms:.2f}",
            "X-Batch-Size": str(timing.batch_size),
            # The same, plus the whole handler, for browsers' and proxies' timing views.
            "Server-Timing": f"queue;dur={timing.queue_ms:.2f}, "
            f"inference;dur={timing.inference_ms:.2f}, forward;dur={timing.forward_ms:.2f}, "
            f"handler;dur={elapsed * 1000:.2f}",
        },
    )


def _check_kind(name: str, task_name: str, inputs: PredictInputs) -> None:
    """Texts to a text model, images to an image model: the version's task says which."""
    try:
        expected = get_task(task_name).modality
    except UnknownTask as exc:  # a version of a task this server no longer knows
        raise Unavailable(
            f"Model {name!r} cannot be served here: {exc.args[0]}", code="model_not_loadable"
        ) from exc
    if inputs.kind == expected:
        return
    raise Unprocessable(
        f"Model {name!r} predicts from {expected}s but the request sent {inputs.kind}s. "
        + (
            'Send JSON {"inputs": ["text", ...]}.'
            if expected == "text"
            else 'Send images as multipart `file` parts or {"image_base64": ...}.'
        ),
        code="wrong_input_kind",
        errors=[{"field": "inputs", "message": f"expected {expected} inputs"}],
    )


def _options(inputs: PredictInputs) -> PredictOptions:
    """The request's options, the contract's defaults where it gave none (the head clamps
    top_k to the model's labels)."""
    defaults = PredictOptions()
    return PredictOptions(
        top_k=defaults.top_k if inputs.top_k is None else inputs.top_k,
        coverage=defaults.coverage if inputs.coverage is None else inputs.coverage,
    )
