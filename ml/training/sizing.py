"""`auto` input sizes and time budget, from the dataset's input statistics and the backbone.

Images far smaller than the backbone's input are not upscaled to it for every fine-tuning step:
the tuned model trains and serves at a size picked from the images' native size (CNNs run at
any size; a ViT's position embeddings are resampled to it by timm). The frozen-features probe
keeps the backbone's own size, where its features are best (docs/measurements.md). Texts get a
`max_length` that covers the dataset's long texts, not a fixed one.
"""

import math

from ml.backbones.spec import BackboneSpec
from ml.datasets.inputs import InputStats
from ml.training.costs import probe_seconds

DEFAULT_IMAGE_SIZE = 224
DEFAULT_MAX_LENGTH = 128
# Fine-tuning at about twice the native side keeps the backbone's early downsampling from
# discarding small images' detail; below 64 px a CNN's last feature map is 2x2 or smaller.
_UPSCALE = 2
_MIN_TUNING_SIZE = 64
_SIZE_STEP = 32  # CNN strides (and ViT patches of 16 or 32) divide it
# Subword tokenizers cut English words and marks into about 1.3 tokens on average; plus the
# start and end tokens.
_TOKENS_PER_PRE_TOKEN = 1.3
_SPECIAL_TOKENS = 2
_LENGTH_STEP = 16
_MIN_MAX_LENGTH = 16
_MAX_PIXEL_SIDE = 32  # at most 32 x 32 x 3 raw pixels beside the deep features
# `auto`'s fine-tuning budget: what is left, once the job has spent what it spent before
# fine-tuning (loading, the classical model, the probe), of this many times the probe's own
# cost (its features and fit: what a frozen-features notebook spends), so that a whole job
# stays within four times that notebook with room for the calibration after it. A budget of
# twice the time spent so far took the tweets 5.1 times their baseline's time on a quiet
# machine, where the classical model and the probe together took 1.9 times it (bench/
# RESULTS.md). Never under ten seconds: a job of a few seconds can still try an epoch.
JOB_TIMES_PROBE = 3.0
MIN_BUDGET_SECONDS = 10


def backbone_image_size(backbone: BackboneSpec) -> int:
    return backbone.input_size or DEFAULT_IMAGE_SIZE


def _smaller_than_input(stats: InputStats, size: int) -> bool:
    """Whether the images are upscaled to reach the input (their median shorter side)."""
    return stats.image_min_side is not None and stats.image_min_side < size


def pixel_side(stats: InputStats, size: int) -> int:
    """The side of the raw-pixel grid an image head reads beside its features
    (ml/training/image_classifier.py): 0 (none) unless the images are smaller than the input;
    else the largest divisor of the input size up to their native side and 32 (a divisor, so
    the averaging is exact and exports to ONNX as plain pooling)."""
    if stats.image_min_side is None or not _smaller_than_input(stats, size):
        return 0
    limit = min(stats.image_min_side, _MAX_PIXEL_SIDE)
    return max(side for side in range(1, limit + 1) if size % side == 0)


def image_crop_pct(stats: InputStats, backbone_crop_pct: float, size: int) -> float:
    """The share of the resized image that the centre crop keeps: the backbone's own (timm's
    0.875 for ImageNet photos, whose objects sit inside a margin) unless the images are smaller
    than the input. Upscaled small images (scans, icons, product crops) fill their frame, and a
    crop would cut off the object's edges: on Fashion-MNIST the probe scored 0.849 test accuracy
    uncropped against 0.8405 cropped (bench/RESULTS.md)."""
    return 1.0 if _smaller_than_input(stats, size) else backbone_crop_pct


def tuning_image_size(stats: InputStats, backbone: BackboneSpec) -> int:
    """Twice the images' median smaller side, in steps of 32 px, between 64 px and the
    backbone's own size (never above it: a 2,000-px photo trains at 224)."""
    full = backbone_image_size(backbone)
    if stats.image_min_side is None:
        return full
    wanted = _SIZE_STEP * math.ceil(_UPSCALE * stats.image_min_side / _SIZE_STEP)
    return max(min(_MIN_TUNING_SIZE, full), min(full, wanted))


def tuning_max_length(stats: InputStats, backbone: BackboneSpec) -> int:
    """Tokens for the dataset's 95th-percentile text, in steps of 16, capped by what the
    backbone reads; 128 when the texts were not measured."""
    cap = backbone.max_length or 512
    if stats.text_tokens_p95 is None:
        return min(DEFAULT_MAX_LENGTH, cap)
    tokens = math.ceil(stats.text_tokens_p95 * _TOKENS_PER_PRE_TOKEN) + _SPECIAL_TOKENS
    wanted = _LENGTH_STEP * math.ceil(tokens / _LENGTH_STEP)
    return max(min(_MIN_MAX_LENGTH, cap), min(cap, wanted))


def fine_tuning_budget(probe_seconds: float, spent_seconds: float) -> float:
    """auto's fine-tuning seconds once the job has spent ``spent_seconds``, of which the probe
    (its features and fit) took ``probe_seconds``."""
    return max(MIN_BUDGET_SECONDS, round(JOB_TIMES_PROBE * probe_seconds - spent_seconds, 1))


def auto_time_budget(
    backbone: BackboneSpec, num_examples: int, probe_size: int, device: str
) -> int:
    """The plan's estimate of `auto`'s fine-tuning budget: JOB_TIMES_PROBE times the probe's
    estimated cost, less the probe's (the run sets it from measured costs, ml/training/run.py)."""
    probe = probe_seconds(backbone, num_examples, probe_size, device)
    return int(max(MIN_BUDGET_SECONDS, math.ceil((JOB_TIMES_PROBE - 1) * probe)))
