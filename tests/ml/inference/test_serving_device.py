"""Where predictions run: the GPU when there is one, else the CPU; a missing GPU is a clear
error."""

import pytest
import torch

from ml.device import pick_device


def test_auto_picks_the_gpu_only_when_there_is_one() -> None:
    assert str(pick_device("auto")) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert str(pick_device("cpu")) == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_a_missing_gpu_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:0")
