import pytest
import torch

from ml.training import reporting
from ml.training.loop import EpochProgress
from ml.training.reporting import Reporter, preparation_ticker
from ml.training.spec import TrainingStopped
from tests.ml.training.conftest import Recorder


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(reporting.time, "perf_counter", fake)
    return fake


def test_progress_is_throttled_and_its_eta_follows_measured_step_times(clock: Clock) -> None:
    hooks = Recorder()
    reporter = Reporter(hooks, epochs=2, steps_per_epoch=10)
    reporter.eval_seconds = 5.0
    progress = EpochProgress(epoch=0, batch=0, step=0, loss_sum=torch.zeros(()))
    for _ in range(4):
        clock.now += 1.0  # one second a step
        progress.step += 1
        progress.batch += 1
        progress.loss_sum += 0.5
        reporter.step(progress)
    # The first step reports (nothing was reported yet), then not again within 2 seconds.
    assert [call["step"] for call in hooks.progress_calls] == [1, 3]
    last = hooks.progress_calls[-1]
    assert last["epoch"] == 1 and last["epochs"] == 2 and last["total_steps"] == 20
    # 17 steps left at 1 s each, plus the 2 evaluations still to come at 5 s each.
    assert last["eta_seconds"] == pytest.approx(17 + 2 * 5.0)
    assert last["metrics"] == {"train_loss": pytest.approx(0.5)}


def test_preparation_ticker_polls_every_batch_and_reports_as_epoch_zero(clock: Clock) -> None:
    hooks = Recorder(stop_at={5: "cancel"})

    def check() -> None:
        if hooks.should_stop() is not None:
            raise TrainingStopped("cancel")

    tick = preparation_ticker(hooks, check, 10, epochs=3)
    for _ in range(4):
        tick()
        clock.now += 1.5
    assert hooks.polls == 4
    assert [call["step"] for call in hooks.progress_calls] == [2]
    assert hooks.progress_calls[0]["epoch"] == 0 and hooks.progress_calls[0]["epochs"] == 3
    assert hooks.progress_calls[0]["eta_seconds"] == pytest.approx(1.5 * 8)
    with pytest.raises(TrainingStopped):
        tick()
