"""Classification: one label per example (softmax) or several (a sigmoid per label)."""

from typing import Any

from ml.tasks.base import Modality, ServingHead, Task
from ml.tasks.classification.data import ClassificationData
from ml.tasks.classification.schemas import ClassificationPrediction, MultiLabelPrediction
from ml.tasks.classification.serving import ClassificationHead
from ml.tasks.classification.training import ClassificationTraining


class Classification(ClassificationData, ClassificationTraining, Task):
    family = "classification"
    headline = "val_macro_f1"
    headline_label = "macro-F1"
    prediction_schemas = (ClassificationPrediction, MultiLabelPrediction)

    def __init__(self, modality: Modality) -> None:
        self.modality = modality
        self.name = f"{modality}_classification"

    def serving_head(self, config: dict[str, Any]) -> ServingHead:
        return ClassificationHead(config)


TASKS = (Classification("image"), Classification("text"))
