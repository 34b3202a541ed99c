"""Regression: one or several numbers per example, with split-conformal intervals."""

from typing import Any

from ml.tasks.base import Modality, ServingHead, Task
from ml.tasks.regression.data import RegressionData
from ml.tasks.regression.schemas import RegressionPrediction
from ml.tasks.regression.serving import RegressionHead
from ml.tasks.regression.training import RegressionTraining


class Regression(RegressionData, RegressionTraining, Task):
    family = "regression"
    headline = "val_rmse"
    headline_label = "RMSE"
    hyperparameters = {"loss": "mse"}
    prediction_schemas = (RegressionPrediction,)

    def __init__(self, modality: Modality) -> None:
        self.modality = modality
        self.name = f"{modality}_regression"

    def serving_head(self, config: dict[str, Any]) -> ServingHead:
        return RegressionHead(config)

    def num_outputs(self, config: dict[str, Any]) -> int:
        return len(config["targets"])


TASKS = (Regression("image"), Regression("text"))
