import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ml import checkpoint
from ml.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint


def _state() -> dict:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    shared = torch.arange(6.0)
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "tied": {"a": shared, "b": shared, "view": shared[2:4], "empty": torch.zeros(0)},
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "step": 7,
        "best": None,
    }


def test_round_trip_restores_tensors_and_structure(tmp_path: Path) -> None:
    state = _state()
    save_checkpoint(tmp_path / "ckpt", state)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded is not None

    assert loaded["step"] == 7 and loaded["best"] is None
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    assert torch.equal(loaded["tied"]["b"], torch.arange(6.0))
    assert torch.equal(loaded["tied"]["view"], torch.tensor([2.0, 3.0]))
    assert torch.equal(loaded["torch_rng"], state["torch_rng"])
    assert loaded["python_rng"] == state["python_rng"]  # tuples come back as tuples
    np.random.set_state(loaded["numpy_rng"])
    assert np.random.random() == (np.random.set_state(state["numpy_rng"]), np.random.random())[1]

    # The optimizer state (int keys, tensors inside) loads into a fresh optimizer.
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    optimizer.load_state_dict(loaded["optimizer"])
    assert torch.equal(
        optimizer.state_dict()["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"]
    )


def test_missing_checkpoint_is_none_and_remove_is_idempotent(tmp_path: Path) -> None:
    assert load_checkpoint(tmp_path / "ckpt") is None
    remove_checkpoint(tmp_path / "ckpt")
    save_checkpoint(tmp_path / "ckpt", {"step": 1})
    remove_checkpoint(tmp_path / "ckpt")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "ckpt", {"step": 1})
    save_checkpoint(tmp_path / "ckpt", {"step": 2})
    assert load_checkpoint(tmp_path / "ckpt") == {"step": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_crash_between_renames_falls_back_to_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_checkpoint(tmp_path / "ckpt", {"step": 1})
    real_replace = checkpoint.os.replace
    calls = []

    def crash_on_second(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_second)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "ckpt", {"step": 2})
    monkeypatch.undo()

    assert load_checkpoint(tmp_path / "ckpt") == {"step": 1}
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    save_checkpoint(tmp_path / "ckpt", {"step": 3})
    assert load_checkpoint(tmp_path / "ckpt") == {"step": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
