"""Frozen-backbone features (the classifier layer's input), computed once and cached.

The key covers the dataset's contents, the backbone's weights and the preprocessing, so any
job that would compute the same numbers reuses them. A preempted extraction keeps what it has
done and the next attempt carries on from there.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ml.backbones.atomic import write_atomically
from ml.device import autocast
from ml.training.data import CachedInputs, build_loader, num_rows
from ml.training.model import classifier_layer, forward_logits
from ml.training.spec import TrainingStopped


def features_path(
    cache_dir: Path, dataset_key: str, backbone_key: str, preprocessing: dict[str, Any]
) -> Path:
    described = json.dumps([dataset_key, backbone_key, preprocessing], sort_keys=True)
    return cache_dir / "features" / f"{hashlib.sha256(described.encode()).hexdigest()}.safetensors"


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def extract_features(
    model: torch.nn.Module,
    inputs: CachedInputs,
    batch_size: int,
    path: Path,
    check: Callable[[], None] | None = None,
) -> torch.Tensor:
    """float32 [N, D]: the classifier layer's input for every example of the dataset."""
    if path.is_file():
        return load_file(str(path))["features"]
    total = num_rows(inputs)
    features: torch.Tensor | None = None
    done = np.zeros(total, dtype=bool)
    if _partial(path).is_file():
        saved = load_file(str(_partial(path)))
        features, done = saved["features"], saved["done"].numpy().astype(bool)
    captured: list[torch.Tensor] = []
    layer = classifier_layer(model)
    handle = layer.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
    device = next(model.parameters()).device
    remaining = np.flatnonzero(~done)
    unlabelled = torch.zeros(total, dtype=torch.long)
    loader = build_loader(inputs, remaining, unlabelled, batch_size, train=False, device=device)
    model.eval()
    try:
        with torch.inference_mode(), autocast(loader.device):
            for batch in loader.batches():
                if check is not None:
                    check()
                forward_logits(model, batch.inputs)
                rows = captured.pop().float().cpu()
                if features is None:
                    features = torch.zeros(total, rows.shape[1])
                features[torch.from_numpy(batch.index)] = rows
                done[batch.index] = True
    except TrainingStopped as stop:
        if stop.reason == "preempt" and features is not None:
            partial = {"features": features, "done": torch.from_numpy(done.astype(np.uint8))}
            write_atomically(_partial(path), lambda tmp: save_file(partial, str(tmp)))
        raise
    finally:
        handle.remove()
    assert features is not None, "the loader covered no rows"
    result = features
    write_atomically(path, lambda tmp: save_file({"features": result}, str(tmp)))
    _partial(path).unlink(missing_ok=True)
    return result
