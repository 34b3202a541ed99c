"""A loaded model version that turns raw inputs into contract-shaped predictions."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ml.artifacts import CONFIG_FILE, FORMAT, HF_DIR, artifact_task, load_artifact
from ml.classical.tfidf import load_vectorizer
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
from ml.inference.pixels import PixelPreprocessor
from ml.inference.texts import DEFAULT_MAX_LENGTH, TextPreprocessor, TfidfPreprocessor
from ml.inference.threads import configure_threads
from ml.tasks import Modality, PredictOptions, ServingHead, Task

RUNTIMES = ("torch", "torch_compile", "onnx_fp32", "onnx_int8")
DEFAULT_RUNTIME = "torch"
# Beyond the weights: runtime arenas, activations of a small batch, the tokenizer. A rough
# allowance is enough for an LRU budget, which only needs to be right within a factor.
_OVERHEAD_FACTOR = 1.25
_OVERHEAD_BYTES = 16 * 1024**2

Preprocessor = ImagePreprocessor | TextPreprocessor | PixelPreprocessor | TfidfPreprocessor


class Predictor:
    """One model version. ``preprocess`` and ``forward`` are meant to run off the event loop;
    one thread at a time (the batcher's) calls them. What the raw outputs mean is the task's
    serving head's business: ``postprocess`` and ``format`` only hand them over."""

    def __init__(
        self,
        *,
        task: Task,
        head: ServingHead,
        runtime: str,
        preprocessor: Preprocessor,
        backend: Backend,
    ) -> None:
        self.task = task
        self.head = head
        self.runtime = runtime
        self.memory_bytes = int(backend.memory_bytes * _OVERHEAD_FACTOR) + _OVERHEAD_BYTES
        self._preprocessor = preprocessor
        self._backend = backend

    @property
    def modality(self) -> Modality:
        return self.task.modality

    @property
    def names(self) -> list[str]:
        """What the outputs are: labels (classification) or target names (regression)."""
        names: list[str] = self.head.names
        return names

    def preprocess(self, inputs: Sequence[bytes] | Sequence[str]) -> Batch:
        """Decode/tokenize a batch; InputError names the first unusable input by index."""
        if not inputs:
            raise ValueError("no inputs")
        return self._preprocessor(inputs)

    def forward(self, batch: Batch) -> np.ndarray:
        """Raw outputs [n, num_outputs] (float32): logits, or standardised values."""
        return self._backend(batch)

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, or values on the targets' own scale."""
        return self.head.postprocess(raw)

    def check(self, options: PredictOptions) -> None:
        """ValueError (its message is for the client) when this model cannot answer options."""
        self.head.check(options)

    def format(self, values: np.ndarray, options: PredictOptions) -> list[dict[str, Any]]:
        return self.head.format(values, options)

    def predict(
        self, inputs: Sequence[bytes] | Sequence[str], options: PredictOptions | None = None
    ) -> list[dict[str, Any]]:
        """All four steps at once, for callers that do their own batching."""
        options = options or PredictOptions()
        self.check(options)
        return self.format(self.postprocess(self.forward(self.preprocess(inputs))), options)


def read_config(artifact_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((artifact_dir / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{artifact_dir} is not a {FORMAT} artifact")
    return config


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
    task = artifact_task(config, artifact_dir)  # before anything is built: a clear error
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
        if task.modality == "text" and config.get("library") != "classical":
            tokenizer = AutoTokenizer.from_pretrained(artifact_dir / HF_DIR, local_files_only=True)
    else:
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; known: {list(RUNTIMES)}")
    return predictor_from_parts(
        config,
        backend,
        tokenizer,
        runtime=runtime,
        max_pixels=max_pixels,
        artifact_dir=artifact_dir,
    )


def predictor_from_parts(
    config: dict[str, Any],
    backend: Backend,
    tokenizer: PreTrainedTokenizerBase | None,
    *,
    runtime: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    artifact_dir: Path | None = None,
) -> Predictor:
    """A Predictor over an already-built backend, configured from the artifact's config.json:
    the task it names (ValueError if it names none that is registered) gives the modality and
    the serving head. A classical text model reads its TF-IDF files from ``artifact_dir``."""
    task = artifact_task(config)
    modality = task.modality
    preprocessing = config.get("preprocessing") or {}
    preprocessor: Preprocessor
    if config.get("library") == "classical":
        preprocessor = _classical_preprocessor(preprocessing, artifact_dir, max_pixels)
    elif modality == "image":
        preprocessor = ImagePreprocessor(preprocessing, max_pixels=max_pixels)
    elif tokenizer is None:
        raise ValueError(f"a text model needs its tokenizer (saved in the artifact's {HF_DIR}/)")
    else:
        max_length = int(preprocessing.get("max_length", DEFAULT_MAX_LENGTH))
        tfidf = preprocessing.get("tfidf")
        vectorizer = None if tfidf is None else _vectorizer(tfidf, artifact_dir)
        preprocessor = TextPreprocessor(tokenizer, max_length, vectorizer)
    return Predictor(
        task=task,
        head=task.serving_head(config),
        runtime=runtime,
        preprocessor=preprocessor,
        backend=backend,
    )


def _classical_preprocessor(
    preprocessing: dict[str, Any], artifact_dir: Path | None, max_pixels: int
) -> PixelPreprocessor | TfidfPreprocessor:
    """The features a classical model (ml/classical) was trained on, computed as in training."""
    kind = preprocessing.get("kind")
    if kind == "pixels":
        return PixelPreprocessor(preprocessing, max_pixels=max_pixels)
    if kind == "tfidf":
        return TfidfPreprocessor(_vectorizer(preprocessing, artifact_dir))
    raise ValueError(f"unknown classical features {kind!r}")


def _vectorizer(preprocessing: dict[str, Any], artifact_dir: Path | None) -> TfidfVectorizer:
    if artifact_dir is None:
        raise ValueError("a TF-IDF model needs its artifact directory (its terms and idf)")
    return load_vectorizer(preprocessing, artifact_dir)
