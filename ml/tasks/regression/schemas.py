"""What a regression model's prediction looks like in the contract (/openapi.json)."""

from pydantic import BaseModel, Field


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
