"""The forward pass behind a Predictor: eager torch, torch.compile, or an ONNX Runtime session.

Every backend takes the same batch, a dict of numpy arrays named like the ONNX graph's inputs
(``pixel_values``; ``input_ids``, ``attention_mask``, ``token_type_ids``), and returns the
model's float32 raw outputs of shape [n, num_outputs] (a classifier's logits, a regressor's
standardised values: the task's serving head reads them).
"""

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort
import torch

from ml.device import autocast

Batch = dict[str, np.ndarray]


class Backend(Protocol):
    memory_bytes: int

    def __call__(self, batch: Batch) -> np.ndarray: ...


def logits_of(output: Any) -> torch.Tensor:
    """Logits from whatever a classifier returns: a tensor, a transformers output, a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, Mapping):
        return output["logits"]
    if isinstance(output, tuple | list):
        return output[0]
    raise TypeError(f"cannot find logits in a {type(output).__name__}")


def accepted_inputs(model: torch.nn.Module, names: list[str]) -> list[str]:
    """The batch keys the model is called with: the pixels (positional, see call_model), or
    the token arrays ``model.forward`` takes by name (all of them if it takes ``**kwargs``)."""
    if "pixel_values" in names:
        return ["pixel_values"]
    parameters = inspect.signature(model.forward).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return names
    return [name for name in names if name in parameters]


def call_model(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Image models take the pixels positionally (timm); text models take named tensors."""
    if "pixel_values" in inputs:
        return logits_of(model(inputs["pixel_values"]))
    return logits_of(model(**inputs))


def weights_bytes(model: torch.nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class TorchBackend:
    """Eager PyTorch, optionally wrapped in torch.compile (slow to warm; measured, not default).
    On CUDA the forward pass runs under bf16 autocast, as training's validation did."""

    def __init__(self, model: torch.nn.Module, *, device: str = "cpu", compile: bool = False):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.memory_bytes = weights_bytes(model)
        # dynamic=True: batch size and sequence length change every call; without it each new
        # shape would trigger a recompilation.
        self._forward: Any = torch.compile(self.model, dynamic=True) if compile else self.model
        self._names: list[str] | None = None

    def __call__(self, batch: Batch) -> np.ndarray:
        if self._names is None:
            self._names = accepted_inputs(self.model, list(batch))
        inputs = {name: torch.from_numpy(batch[name]).to(self.device) for name in self._names}
        with torch.inference_mode(), autocast(self.device):
            logits = call_model(self._forward, inputs)
        return logits.float().cpu().numpy()


def cuda_provider_available() -> bool:
    """Whether this ONNX Runtime build can run on a GPU (the PyPI CPU build cannot)."""
    return "CUDAExecutionProvider" in ort.get_available_providers()


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # One batch runs at a time per model, so parallelism between graph nodes buys nothing.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxBackend:
    """An ONNX Runtime session over an exported graph (fp32 or dynamically quantized int8)."""

    def __init__(self, path: Path, *, threads: int, device: str = "cpu") -> None:
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and cuda_provider_available():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=providers
        )
        self._names = [i.name for i in self.session.get_inputs()]
        self.memory_bytes = path.stat().st_size

    def __call__(self, batch: Batch) -> np.ndarray:
        outputs = self.session.run(None, {name: batch[name] for name in self._names})
        return np.asarray(outputs[0], dtype=np.float32)
