"""The image classifier Hone trains and serves: a timm backbone whose pooled features from
several depths, side by side, feed one linear layer.

The head reads the global average of the last POOLED_STAGES stage outputs besides the
backbone's own pooled pre-logits features: a frozen ImageNet backbone's last layer is tuned to
ImageNet's classes, and its middle stages keep more of what other images (grey product photos,
scans) need. On Fashion-MNIST the service's probe on EfficientNet-Lite0's last two stages and
pre-logits scored 0.8605 test accuracy against 0.847 on the pre-logits alone (bench/RESULTS.md).

Small images (scans, icons, product crops far below the input size) also give the head the
image itself: the input averaged down to about its native side (`pixel_side`, chosen in
ml/training/sizing.py),
the raw pixels a practitioner's first linear model reads. On Fashion-MNIST a cross-validated
logistic regression on the stages, pre-logits and 28x28 pixels scored 0.864 test accuracy
against 0.855 without the pixels (bench/RESULTS.md).

Training code finds the head through ``get_classifier()``, as with any timm model; a ViT's
input size is its ``backbone``'s.
"""

import functools

import torch

POOLED_STAGES = 2


class MultiDepthClassifier(torch.nn.Module):
    """Logits = classifier([mean of each of the last `stages` stage outputs, pre-logits])."""

    def __init__(
        self, backbone: torch.nn.Module, num_classes: int, stages: int, pixel_side: int = 0
    ) -> None:
        super().__init__()
        self.pixel_side = pixel_side
        backbone.reset_classifier(0)  # type: ignore[operator]
        self.backbone = backbone
        infos = list(backbone.feature_info)  # type: ignore[arg-type]
        self.stages = max(1, min(stages, len(infos)))
        widths = [int(info["num_chs"]) for info in infos[-self.stages :]]
        width = sum(widths) + int(backbone.num_features)  # type: ignore[arg-type]
        width += 3 * pixel_side**2
        self.classifier = torch.nn.Linear(width, num_classes)

    def head_config(self) -> dict[str, int]:
        """What the head reads, for the artifact's backbone block (load_artifact reads it)."""
        pixels = {"pixel_side": self.pixel_side} if self.pixel_side else {}
        return {"stages": self.stages} | pixels

    def get_classifier(self) -> torch.nn.Linear:
        return self.classifier

    def pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        final, stages = self.backbone.forward_intermediates(  # type: ignore[operator]
            pixels, indices=self.stages
        )
        head = self.backbone.forward_head(final, pre_logits=True)  # type: ignore[operator]
        features = [stage.mean(dim=(2, 3)) for stage in stages] + [head]
        if self.pixel_side:
            features.append(average_grid(pixels, self.pixel_side).flatten(1))
        return torch.cat(features, dim=-1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.pooled(pixels))
        return logits


def average_grid(pixels: torch.Tensor, side: int) -> torch.Tensor:
    """``adaptive_avg_pool2d(pixels, side)``, as products with its averaging matrices where
    ``side`` does not divide the input's sides: torch's ONNX exporter refuses that pooling
    ("output size that are not factor of input size"), and a model fine-tuned at another size
    than its probe's (64 px for a 28-px grid) has such an input. The bins are the pooling's
    own (rows floor(i n / side) to ceil((i + 1) n / side)), so the values are the same."""
    height, width = (int(n) for n in pixels.shape[-2:])
    if height % side == 0 and width % side == 0:
        return torch.nn.functional.adaptive_avg_pool2d(pixels, side)
    rows, columns = (_bins(n, side).to(pixels) for n in (height, width))
    return rows @ pixels @ columns.T


@functools.lru_cache(maxsize=16)
def _bins(size: int, side: int) -> torch.Tensor:
    """[side, size] (float32, CPU; read only): row i averages the inputs adaptive pooling puts
    in output i. Cached: a model serves one input size, and forward passes reuse it."""
    index, outputs = torch.arange(size), torch.arange(side)
    starts, ends = (outputs * size) // side, -((-(outputs + 1) * size) // side)
    inside = (index >= starts[:, None]) & (index < ends[:, None])
    return inside.float() / (ends - starts)[:, None].float()
