"""Serving a model artifact: preprocessing, runtimes (torch, ONNX), calibrated answers."""

from ml.inference.errors import InputError, RuntimeUnavailable
from ml.inference.predictor import RUNTIMES, Predictor, load_predictor
from ml.inference.serving import prepare_serving

__all__ = [
    "RUNTIMES",
    "InputError",
    "Predictor",
    "RuntimeUnavailable",
    "load_predictor",
    "prepare_serving",
]
