"""POST /v1/models/{name}/predict: resolve the version, batch, answer calibrated top-k."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.deps import ProjectDep, SettingsDep
from app.errors import PROBLEM_RESPONSES, Overloaded, Unavailable, Unprocessable
from app.inference.batcher import BatcherClosed, QueueFull
from app.inference.cache import ModelLoadError
from app.inference.inputs import MAX_TOP_K, input_problem, read_inputs
from app.inference.resolution import resolve
from app.inference.serving import ModelKey
from ml.inference.errors import InputError

router = APIRouter(prefix="/v1/models", tags=["prediction"], responses=PROBLEM_RESPONSES)

_MODALITY = {"image_classification": "image", "text_classification": "text"}
_MAX_VERSION = 2**31 - 1  # the registry's integer column
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
                        "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "top_k": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                }
            },
        },
    }
}


class ModelRef(BaseModel):
    name: str
    version: int


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[dict[str, Any]]


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    openapi_extra=_BODY,
    summary="Predict with a model version (calibrated probabilities)",
)
async def predict(
    name: str,
    request: Request,
    project: ProjectDep,
    settings: SettingsDep,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    alias: Annotated[str | None, Query(max_length=100)] = None,
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
    expected = _MODALITY.get(resolved.task, "text")
    if inputs.kind != expected:
        raise Unprocessable(
            f"Model {name!r} classifies {expected}s but the request sent {inputs.kind}s. "
            + (
                'Send JSON {"inputs": ["text", ...]}.'
                if expected == "text"
                else 'Send images as multipart `file` parts or {"image_base64": ...}.'
            ),
            code="wrong_input_kind",
            errors=[{"field": "inputs", "message": f"expected {expected} inputs"}],
        )
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
    top_k = min(inputs.top_k or 5, len(loaded.predictor.labels))
    try:
        predictions, timing = await loaded.batcher.submit(inputs.items, top_k)
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
