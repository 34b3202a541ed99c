"""Resumable training state on disk, written atomically and read back without unpickling.

A checkpoint is a directory: tensors.safetensors holds every tensor, state.json everything else
with {"__tensor__": key} where a tensor was. Nested dicts, lists and tuples (optimizer state,
RNG states, numpy arrays) round-trip; dicts with int keys (optimizer state) keep them.

Replacing a directory cannot be one rename, so it is two: the old checkpoint moves aside, the
new one moves in, the old one is deleted. A crash between the renames leaves the aside copy,
which load_checkpoint falls back to; "checkpoint" itself only ever names a complete directory.
"""

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

TENSORS_FILE = "tensors.safetensors"
STATE_FILE = "state.json"
_TENSOR = "__tensor__"
_INT_KEYS = "__int_keys__"
_TUPLE = "__tuple__"
_NDARRAY = "__ndarray__"


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu").contiguous()
        # safetensors refuses two names for one storage (tied weights, views): copy repeats.
        if tensor.untyped_storage().data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[path] = tensor
        return {_TENSOR: path}
    if isinstance(value, np.ndarray):
        # numpy's RNG state is a uint32 array; int64 holds it exactly in every torch version.
        tensors[path] = torch.from_numpy(value.astype(np.int64))
        return {_NDARRAY: [path, value.dtype.str]}
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            items = {str(k): _encode(v, f"{path}.{k}", tensors, seen) for k, v in value.items()}
            return {_INT_KEYS: items}
        return {str(k): _encode(v, f"{path}.{k}", tensors, seen) for k, v in value.items()}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, f"{path}.{i}", tensors, seen) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}.{i}", tensors, seen) for i, v in enumerate(value)]
    return value


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        if set(value) == {_NDARRAY}:
            key, dtype = value[_NDARRAY]
            return tensors[key].numpy().astype(np.dtype(dtype))
        if set(value) == {_INT_KEYS}:
            return {int(k): _decode(v, tensors) for k, v in value[_INT_KEYS].items()}
        if set(value) == {_TUPLE}:
            return tuple(_decode(v, tensors) for v in value[_TUPLE])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _aside(dest: Path) -> Path:
    return dest.with_name(dest.name + ".old")


def save_checkpoint(dest: Path, state: dict[str, Any]) -> None:
    """Write state (JSON-able values and tensors, nested) as the checkpoint at dest."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, "s", tensors, set())
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
    tmp.mkdir()
    try:
        save_file(tensors, str(tmp / TENSORS_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(encoded))
        aside = _aside(dest)
        if dest.exists():
            shutil.rmtree(aside, ignore_errors=True)
            os.replace(dest, aside)
        os.replace(tmp, dest)
        shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_checkpoint(dest: Path) -> dict[str, Any] | None:
    """The state last saved at dest, or None when there is none."""
    for candidate in (dest, _aside(dest)):
        if (candidate / STATE_FILE).is_file():
            tensors = load_file(str(candidate / TENSORS_FILE))
            result: dict[str, Any] = _decode(
                json.loads((candidate / STATE_FILE).read_text()), tensors
            )
            return result
    return None


def remove_checkpoint(dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    shutil.rmtree(_aside(dest), ignore_errors=True)
