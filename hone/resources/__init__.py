"""One class per part of the API, each holding the client's transport."""

from hone.resources.backbones import Backbones
from hone.resources.datasets import Datasets
from hone.resources.jobs import Jobs
from hone.resources.models import Models
from hone.resources.predict import Predictor

__all__ = ["Backbones", "Datasets", "Jobs", "Models", "Predictor"]
