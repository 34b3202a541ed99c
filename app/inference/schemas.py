"""API shapes of a prediction: one object per input, shaped by the model's task.

Each task declares its prediction objects (``Task.prediction_schemas``); the response
documents any of those of the registered tasks. The endpoint writes the serving head's dicts
straight into its JSONResponse (validating thousands of floats per request would cost more
than formatting them); these models are the contract /openapi.json documents (explained in
docs/predictions.md), and the tests hold the heads' output to it.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

from pydantic import BaseModel, Field

from ml.tasks import get_task, task_names


class ModelRef(BaseModel):
    name: str
    version: int


def _prediction_union() -> Any:
    """Every registered task's prediction objects, as one union type (first seen first)."""
    shapes = dict.fromkeys(
        shape for name in task_names() for shape in get_task(name).prediction_schemas
    )
    return reduce(or_, shapes)


Prediction = _prediction_union()


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction] = Field(  # type: ignore[valid-type]
        description="One per input, in input order."
    )
