"""Which files hold a backbone's weights: what the factory loads and what gets hashed.

Nothing here imports torch, so the catalog can answer availability cheaply.
"""

import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from huggingface_hub import try_to_load_from_cache

from ml.backbones.packages import package_weights
from ml.backbones.spec import BackboneSpec

# In the order transformers prefers them; an index file lists the shards of a large model.
TRANSFORMERS_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# timm's hub loader takes the safetensors file when the repo has one, else the pickle
# (which it reads with weights_only=True).
TIMM_HUB_WEIGHTS = ("model.safetensors", "pytorch_model.bin")

Lookup = Callable[[str], Path | None]


def split_revision(location: str) -> tuple[str, str | None]:
    """``org/name@revision`` -> (``org/name``, ``revision``); no ``@`` means the default branch."""
    repo_id, _, revision = location.partition("@")
    return repo_id, revision or None


def hub_weight_files(spec: BackboneSpec) -> list[Path]:
    """The spec's weight files already in the local Hugging Face cache; [] when not (all) there."""
    lookup: Lookup = partial(_cached_hub_file, _location(spec))
    if spec.library == "timm":
        return _first_complete(lookup, TIMM_HUB_WEIGHTS)
    if lookup("config.json") is None:
        return []
    return _first_complete(lookup, TRANSFORMERS_WEIGHTS)


def timm_weights_file(spec: BackboneSpec, cache_dir: Path) -> Path:
    """The safetensors file a local or package timm backbone loads from."""
    if spec.source == "package":
        return package_weights(_location(spec), cache_dir)
    path = Path(_location(spec))
    if path.is_dir():
        path = path / "model.safetensors"
    # timm would torch.load anything else, and a pickle from disk is code, not data.
    if path.suffix != ".safetensors":
        raise ValueError(f"backbone {spec.id!r}: local timm weights must be a .safetensors file")
    return path


def transformers_dir(spec: BackboneSpec, cache_dir: Path) -> Path:
    """The ``from_pretrained`` directory of a local or package transformers backbone."""
    if spec.source == "package":
        return package_weights(_location(spec), cache_dir)
    return Path(_location(spec))


def weight_files(spec: BackboneSpec, cache_dir: Path) -> list[Path]:
    """The files a built model's weights came from (hub: from the cache the build filled)."""
    if spec.source == "random":
        raise ValueError(f"backbone {spec.id!r} is randomly initialised and has no weight files")
    if spec.source == "hub":
        files = hub_weight_files(spec)
    elif spec.library == "timm":
        files = [timm_weights_file(spec, cache_dir)]
    else:
        directory = transformers_dir(spec, cache_dir)
        files = _first_complete(partial(_file_in, directory), TRANSFORMERS_WEIGHTS)
    if not files or not all(path.is_file() for path in files):
        where = "the Hugging Face cache" if spec.source == "hub" else spec.location
        raise FileNotFoundError(f"backbone {spec.id!r}: no weight files in {where}")
    return files


def _first_complete(lookup: Lookup, names: Sequence[str]) -> list[Path]:
    for name in names:
        found = lookup(name)
        if found is None:
            continue
        if not name.endswith(".index.json"):
            return [found]
        shard_names = sorted(set(json.loads(found.read_text())["weight_map"].values()))
        shards = [lookup(shard) for shard in shard_names]
        if all(shard is not None for shard in shards):
            return [shard for shard in shards if shard is not None]
    return []


def _cached_hub_file(location: str, filename: str) -> Path | None:
    repo_id, revision = split_revision(location)
    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    # A cached "does not exist" marker is a sentinel object, not a path.
    return Path(found) if isinstance(found, str) else None


def _file_in(directory: Path, name: str) -> Path | None:
    path = directory / name
    return path if path.is_file() else None


def _location(spec: BackboneSpec) -> str:
    if spec.location is None:
        raise ValueError(f"backbone {spec.id!r} ({spec.source}) has no location")
    return spec.location
