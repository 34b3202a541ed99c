"""Export a classifier to ONNX (fp32) and quantize that graph to dynamic int8."""

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from ml.classical.model import FEATURES_INPUT
from ml.inference.backends import Batch, accepted_inputs, call_model

OPSET = 17
# runtime -> file next to model.safetensors
ONNX_FILES: Mapping[str, str] = {"onnx_fp32": "model.onnx", "onnx_int8": "model.int8.onnx"}
# Dynamic int8 pays for matrix products (transformers' linear layers, any classifier head);
# Gather covers token embeddings, a third to a half of a small transformer's weights.
# ConvInteger is slower than the fp32 convolution on CPU and costs accuracy, so convolutions
# stay fp32: measured on EfficientNet-Lite0, quantizing them was 3.6x slower than fp32.
_QUANTIZED_OPS = ["MatMul", "Gemm", "Gather"]


class _LogitsOnly(torch.nn.Module):
    """Positional tensors in, logits out: the shape torch.onnx.export traces best."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return call_model(self.model, dict(zip(self.names, tensors, strict=True)))


def export_onnx(model: torch.nn.Module, sample: Batch, dest: Path) -> None:
    """Trace ``model`` on ``sample`` into ``dest`` with dynamic batch (and sequence) axes.

    The sample should hold at least two rows and, for text, some padding, so the traced graph
    keeps the attention-mask path instead of a shortcut for unpadded input.
    """
    names = accepted_inputs(model, list(sample))
    # eval() on the wrapper, not only the model: export restores the wrapper's mode afterwards,
    # recursively, which would leave a train-mode wrapper's model in train mode too.
    wrapper = _LogitsOnly(model, names).eval()
    tensors = tuple(torch.from_numpy(sample[name]) for name in names)
    dynamic_axes: dict[str, dict[int, str]] = {"logits": {0: "batch"}}
    for name in names:
        fixed = name in ("pixel_values", FEATURES_INPUT)  # only the batch varies
        dynamic_axes[name] = {0: "batch"} if fixed else {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        # TorchScript tracing warns about every Python-level shape check it freezes; the
        # graph is verified against eager logits by prepare_serving instead.
        warnings.simplefilter("ignore")
        # dynamo=False: the dynamo exporter needs onnxscript, which Hone does not depend on.
        torch.onnx.export(
            wrapper,
            tensors,
            str(dest),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(source: Path, dest: Path) -> None:
    """Dynamic int8 weights (activations quantized on the fly), from the fp32 graph."""
    quantize_dynamic(source, dest, weight_type=QuantType.QInt8, op_types_to_quantize=_QUANTIZED_OPS)
