"""Stopping on request: preemption checkpoints and resumes exactly; cancel stops at once."""

from pathlib import Path

import pytest
import torch

from ml.checkpoint import load_checkpoint
from ml.training.run import run_training
from ml.training.spec import TrainingStopped
from tests.ml.training.conftest import MakeSpec, Recorder

# 3 epochs of 3 steps (48 training images, batch 16).
HP = {"image_size": 32, "batch_size": 16, "epochs": 3, "patience": 3}


def _polls_before_fine_tuning(image_dataset: Path, make_spec: MakeSpec, tmp: Path) -> int:
    """How many should_stop() calls a fresh run makes before its first training step."""
    hooks = Recorder()
    run_training(make_spec(image_dataset, method="linear_probe", work_dir=tmp), hooks)
    return hooks.polls


def test_preempted_run_resumes_to_the_uninterrupted_result(
    image_dataset: Path, make_spec: MakeSpec, tmp_path: Path
) -> None:
    reference = run_training(
        make_spec(image_dataset, method="full", hyperparameters=HP, work_dir=tmp_path / "ref"),
        Recorder(),
    )
    # Preempt after the second step of the second epoch. One poll per training step and one per
    # evaluation batch (12 validation images in batches of 8: 2, for the weights and again for
    # their moving average).
    before = _polls_before_fine_tuning(image_dataset, make_spec, tmp_path / "probe")
    spec = make_spec(image_dataset, method="full", hyperparameters=HP)
    first = Recorder(stop_at={before + 3 + 2 * 2 + 2: "preempt"})
    with pytest.raises(TrainingStopped) as stopped:
        run_training(spec, first)
    assert stopped.value.reason == "preempt"
    saved = load_checkpoint(spec.work_dir / "checkpoint")
    assert saved is not None
    assert saved["progress"]["epoch"] == 1 and saved["progress"]["batch"] == 2

    second = Recorder()
    resumed = run_training(spec, second)

    assert resumed.resumed_from_step == 5
    resume_events = [e for e in second.events if e["data"] and "resume_step" in e["data"]]
    assert resume_events == [
        {
            "level": "info",
            "message": "resuming from step 5",
            "type": "message",
            "data": {"resume_step": 5},
        }
    ]
    assert [e["epoch"] for e in resumed.metrics["epochs"]] == [1, 2, 3]
    for got, expected in zip(resumed.metrics["epochs"], reference.metrics["epochs"], strict=True):
        assert got == pytest.approx(expected)
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, msg=name)


def test_time_based_checkpoints_are_written_within_an_epoch(
    image_dataset: Path, make_spec: MakeSpec, tmp_path: Path
) -> None:
    before = _polls_before_fine_tuning(image_dataset, make_spec, tmp_path / "probe")
    spec = make_spec(image_dataset, method="full", hyperparameters=HP, checkpoint_every_seconds=0)
    # Cancel right after the second step: nothing is saved for a cancel, so whatever is on
    # disk came from the time-based checkpoints.
    with pytest.raises(TrainingStopped) as stopped:
        run_training(spec, Recorder(stop_at={before + 2: "cancel"}))
    assert stopped.value.reason == "cancel"
    saved = load_checkpoint(spec.work_dir / "checkpoint")
    assert saved is not None and saved["progress"] == pytest.approx(
        {"epoch": 0, "batch": 1, "step": 1, "loss_sum": saved["progress"]["loss_sum"]}
    )


def test_cancel_stops_within_a_step(image_dataset: Path, make_spec: MakeSpec) -> None:
    spec = make_spec(image_dataset, method="full", hyperparameters=HP)
    hooks = Recorder(stop_at={1: "cancel"})
    with pytest.raises(TrainingStopped) as stopped:
        run_training(spec, hooks)
    assert stopped.value.reason == "cancel"
    assert hooks.polls == 1
    assert not (spec.work_dir / "checkpoint").exists()


def test_cancel_during_fine_tuning_stops_at_the_next_step(
    image_dataset: Path, make_spec: MakeSpec, tmp_path: Path
) -> None:
    before = _polls_before_fine_tuning(image_dataset, make_spec, tmp_path / "probe")
    hooks = Recorder(stop_at={before + 1: "cancel"})
    with pytest.raises(TrainingStopped):
        run_training(make_spec(image_dataset, method="full", hyperparameters=HP), hooks)
    assert hooks.polls == before + 1
    assert not any(e["type"] == "metrics" and e["data"].get("epoch") == 1 for e in hooks.events)
