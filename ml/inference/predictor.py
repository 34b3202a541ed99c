"""A loaded model version that turns raw inputs into contract-shaped predictions."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ml.artifacts import CONFIG_FILE, FORMAT, HF_DIR, load_artifact
from ml.inference.backends import (
    Backend,
    Batch,
    OnnxBackend,
    TorchBackend,
    cuda_provider_available,
)
from ml.inference.errors import RuntimeUnavailable
from ml.inference.images import DEFAULT_MAX_PIXELS, ImagePreprocessor
from ml.inference.onnx_export import ONNX_FILES
from ml.inference.outputs import calibrated_probabilities, format_predictions, resolve_thresholds
from ml.inference.texts import DEFAULT_MAX_LENGTH, TextPreprocessor
from ml.inference.threads import configure_threads

Modality = Literal["image", "text"]
RUNTIMES = ("torch", "torch_compile", "onnx_fp32", "onnx_int8")
DEFAULT_RUNTIME = "torch"
# Beyond the weights: runtime arenas, activations of a small batch, the tokenizer. A rough
# allowance is enough for an LRU budget, which only needs to be right within a factor.
_OVERHEAD_FACTOR = 1.25
_OVERHEAD_BYTES = 16 * 1024**2


class Predictor:
    """One model version. ``preprocess`` and ``forward`` are meant to run off the event loop;
    one thread at a time (the batcher's) calls them."""

    def __init__(
        self,
        *,
        labels: list[str],
        multilabel: bool,
        modality: Modality,
        runtime: str,
        temperature: float,
        thresholds: Any,
        preprocessor: ImagePreprocessor | TextPreprocessor,
        backend: Backend,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.labels = labels
        self.multilabel = multilabel
        self.modality: Modality = modality
        self.runtime = runtime
        self.temperature = temperature
        self.thresholds = resolve_thresholds(thresholds, labels) if multilabel else None
        self.memory_bytes = int(backend.memory_bytes * _OVERHEAD_FACTOR) + _OVERHEAD_BYTES
        self._preprocessor = preprocessor
        self._backend = backend

    def preprocess(self, inputs: Sequence[bytes] | Sequence[str]) -> Batch:
        """Decode/tokenize a batch; InputError names the first unusable input by index."""
        if not inputs:
            raise ValueError("no inputs")
        return self._preprocessor(inputs)

    def forward(self, batch: Batch) -> np.ndarray:
        """Logits [n, num_labels] (float32)."""
        return self._backend(batch)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-calibrated probabilities (sigmoid per label when multi-label)."""
        return calibrated_probabilities(logits, self.temperature, self.multilabel)

    def format(self, probs: np.ndarray, top_k: int) -> list[dict[str, Any]]:
        return format_predictions(probs, self.labels, top_k, self.thresholds)

    def predict(self, inputs: Sequence[bytes] | Sequence[str], top_k: int) -> list[dict[str, Any]]:
        """All four steps at once, for callers that do their own batching."""
        return self.format(self.probabilities(self.forward(self.preprocess(inputs))), top_k)


def read_config(artifact_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((artifact_dir / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{artifact_dir} is not a {FORMAT} artifact")
    return config


def modality_of(config: dict[str, Any]) -> Modality:
    if "modality" in config:
        modality: Modality = config["modality"]
        return modality
    return "image" if config["library"] == "timm" else "text"


def load_predictor(
    artifact_dir: Path,
    *,
    runtime: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Predictor:
    """Load a model version for serving, with the runtime config.json chose unless overridden.

    ONNX runtimes never build the torch model: serving then holds only the session's weights.
    ``threads`` sizes ONNX Runtime's pool; torch's pool is process-wide and only the first
    load in a process sets it (default: every core the process may use).
    """
    config = read_config(artifact_dir)
    runtime = runtime or config.get("runtime") or DEFAULT_RUNTIME
    if device.startswith("cuda") and runtime in ONNX_FILES and not cuda_provider_available():
        # The recorded choice was measured on a CPU; on a GPU without ONNX Runtime's CUDA
        # provider, torch (bf16) is the runtime that uses the GPU.
        runtime = "torch"
    torch_threads = configure_threads(threads)
    backend: Backend
    tokenizer = None
    if runtime in ("torch", "torch_compile"):
        artifact = load_artifact(artifact_dir)
        backend = TorchBackend(artifact.model, device=device, compile=runtime == "torch_compile")
        tokenizer = artifact.tokenizer
    elif runtime in ONNX_FILES:
        path = artifact_dir / ONNX_FILES[runtime]
        if not path.is_file():
            raise RuntimeUnavailable(f"{artifact_dir} has no {path.name} for runtime {runtime}")
        backend = OnnxBackend(path, threads=threads or torch_threads, device=device)
        if modality_of(config) == "text":
            tokenizer = AutoTokenizer.from_pretrained(artifact_dir / HF_DIR, local_files_only=True)
    else:
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; known: {list(RUNTIMES)}")
    return predictor_from_parts(config, backend, tokenizer, runtime=runtime, max_pixels=max_pixels)


def predictor_from_parts(
    config: dict[str, Any],
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase | None,
    *,
    runtime: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Predictor:
    """A Predictor over an already-built backend, configured from the artifact's config.json."""
    modality = modality_of(config)
    preprocessing = config.get("preprocessing") or {}
    preprocessor: ImagePreprocessor | TextPreprocessor
    if modality == "image":
        preprocessor = ImagePreprocessor(preprocessing, max_pixels=max_pixels)
    elif tokenizer is None:
        raise ValueError(f"a text model needs its tokenizer (saved in the artifact's {HF_DIR}/)")
    else:
        max_length = int(preprocessing.get("max_length", DEFAULT_MAX_LENGTH))
        preprocessor = TextPreprocessor(tokenizer, max_length)
    return Predictor(
        labels=list(config["labels"]),
        multilabel=bool(config.get("multilabel", False)),
        modality=modality,
        runtime=runtime,
        temperature=float(config.get("temperature") or 1.0),
        thresholds=config.get("thresholds"),
        preprocessor=preprocessor,
        backend=backend,
    )
