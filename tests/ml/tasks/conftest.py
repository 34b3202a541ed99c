"""The engine's tiny backbones and spec builder, shared with the training tests."""

from tests.ml.training.conftest import backbones, make_spec, one_torch_thread, shared_cache

__all__ = ["backbones", "make_spec", "one_torch_thread", "shared_cache"]
