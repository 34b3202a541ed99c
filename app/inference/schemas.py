"""API shapes of a prediction: one object per input, shaped by the model's task.

The endpoint writes the serving head's dicts straight into its JSONResponse (validating
thousands of floats per request would cost more than formatting them); these models are the
contract /openapi.json documents (explained in docs/predictions.md), and the tests hold the
heads' output to it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    name: str
    version: int


class LabelScore(BaseModel):
    label: str
    score: float = Field(description="Calibrated probability.")


class ClassificationPrediction(BaseModel):
    """A single-label classifier's answer."""

    label: str = Field(description="The most probable label.")
    score: float = Field(description="Its calibrated probability.")
    scores: list[LabelScore] = Field(description="The top_k labels, most probable first.")


class MultiLabelPrediction(BaseModel):
    """A multi-label classifier's answer."""

    labels: list[str] = Field(
        description="Every label whose probability reaches its threshold, most probable first."
    )
    scores: list[LabelScore] = Field(description="The top_k labels, most probable first.")


class RegressionPrediction(BaseModel):
    """A regression model's answer: one number per target, each with its interval."""

    value: float | list[float] = Field(
        description="The predicted value; a list, in the order of `targets`, for several."
    )
    interval: tuple[float, float] | list[tuple[float, float]] = Field(
        description="[low, high] around each value: a split-conformal interval that holds the "
        "true value with probability at least `coverage`."
    )
    coverage: float = Field(description="The coverage asked for (default 0.9).")
    targets: list[str] | None = Field(
        default=None, description="The targets' names; present only when there are several."
    )


Prediction = ClassificationPrediction | MultiLabelPrediction | RegressionPrediction


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[Prediction] = Field(description="One per input, in input order.")
