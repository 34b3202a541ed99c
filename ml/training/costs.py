"""What training work costs, per example, on the worker classes this project measured: the
model a plan's estimates and `auto`'s default time budget come from (docs/measurements.md,
"Training cost model"). A running job measures its own costs instead (ml/training/search.py).
"""

from ml.backbones.spec import BackboneSpec

# Seconds per example on a 2-core CPU for the reference backbones (EfficientNet-Lite0 at
# 224 px, MiniLM-L6 at 128 tokens): a frozen forward pass, and a training step's share
# (forward, backward and update).
_CPU_SECONDS = {
    "image": {"forward": 0.0095, "train": 0.085},
    "text": {"forward": 0.020, "train": 0.080},
}
_REFERENCE_PARAMS = {"image": 3_371_008, "text": 22_713_216}
_REFERENCE_INPUT = {"image": 224, "text": 128}
# A data-centre GPU against those two cores, for the same work: assumed, not measured yet.
_GPU_SPEEDUP = 40.0
# Per job, whatever the data: loading the backbone, the probe's cross-validated solve, the
# calibration and the export.
FIXED_SECONDS = {"cpu": 15.0, "cuda": 10.0}
# The classical candidate's decoding or vectorising, per example.
CLASSICAL_SECONDS_PER_EXAMPLE = 0.003
# One cross-validated linear solve (the classical candidate, the probe, the tuning head).
SOLVE_SECONDS = {"cpu": 5.0, "cuda": 2.0}


def seconds_per_example(backbone: BackboneSpec, kind: str, size: int, device: str) -> float:
    """`kind` "forward" (frozen features, validation) or "train" (one example's share of a
    step), at `size` (image side in pixels, or tokens)."""
    modality = backbone.modality
    seconds = _CPU_SECONDS[modality][kind] * backbone.num_params / _REFERENCE_PARAMS[modality]
    # Convolutions and attention over patches scale with the pixels; text with the tokens.
    ratio = size / _REFERENCE_INPUT[modality]
    seconds *= ratio**2 if modality == "image" else ratio
    return seconds / (_GPU_SPEEDUP if device == "cuda" else 1.0)


def solve_seconds(device: str) -> float:
    return SOLVE_SECONDS["cuda" if device == "cuda" else "cpu"]


def probe_seconds(backbone: BackboneSpec, examples: int, size: int, device: str) -> float:
    """A linear probe: frozen features of every example at `size`, then one solve."""
    return examples * seconds_per_example(backbone, "forward", size, device) + solve_seconds(device)
