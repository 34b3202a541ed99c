"""torch.compile is measured, not served by default; its warm-up takes tens of seconds."""

from pathlib import Path

import numpy as np
import pytest

from ml.inference import load_predictor
from tests.ml.inference.builders import image_bytes


@pytest.mark.slow
def test_torch_compile_answers_like_eager_torch_for_any_batch_size(image_dir: Path) -> None:
    eager = load_predictor(image_dir, runtime="torch")
    compiled = load_predictor(image_dir, runtime="torch_compile")
    assert compiled.runtime == "torch_compile"
    for size in (1, 3, 5):  # dynamic shapes: new batch sizes must not break or recompile wrong
        batch = eager.preprocess([image_bytes(i) for i in range(size)])
        np.testing.assert_allclose(compiled.forward(batch), eager.forward(batch), atol=1e-4)
