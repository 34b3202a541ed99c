"""What a classifier's prediction looks like in the contract (/openapi.json)."""

from pydantic import BaseModel, Field


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
