"""bench/time_to_model.py: per-stage timing of one upload -> saved model job."""

import json
import time
import types
from pathlib import Path

import numpy as np

from bench.common import png_bytes, write_image_zip
from bench.time_to_model import READY, SAVED, one_job, timed_calls
from ml.backbones.catalog import load_catalog
from ml.backbones.testing import TINY_IMAGE_ID, write_test_catalog
from workers.registration import SERVING_CANDIDATES


def _nap(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def test_timed_calls_times_named_functions_and_restores_them() -> None:
    module = types.SimpleNamespace(nap=_nap)
    original = module.nap
    with timed_calls(module, ["nap", "renamed_since"]) as totals:  # type: ignore[arg-type]
        assert module.nap(0.02) == "slept"
        module.nap(0.01)
    assert module.nap is original
    assert set(totals) == {"nap"}  # a name the module lacks is skipped, not an error
    assert 0.03 <= totals["nap"] < 1.0


def test_one_job_stages_add_up_to_the_totals(tmp_path: Path) -> None:
    spec = load_catalog([write_test_catalog(tmp_path / "tiny.json")])[TINY_IMAGE_ID]
    rng = np.random.default_rng(0)
    images = [png_bytes(rng.integers(0, 256, (16, 16), dtype=np.uint8)) for _ in range(20)]
    upload = write_image_zip(tmp_path / "up.zip", images, ["a", "b"] * 10)

    stages, runtime = one_job(upload, spec, tmp_path / "data", tmp_path / "job", "cpu")

    names = list(stages)
    assert names[0].startswith("ingest")
    assert {"decode + resize images", "frozen features", "save artifact"} <= set(names)
    before_saved = sum(stages[name] for name in names[: names.index(SAVED)])
    assert abs(before_saved - stages[SAVED]) < 0.05 * stages[SAVED] + 0.05
    runtime_s = stages[names[names.index(SAVED) + 1]]
    assert abs(stages[SAVED] + runtime_s - stages[READY]) < 0.05
    assert runtime in SERVING_CANDIDATES
    config = json.loads((tmp_path / "job" / "model" / "config.json").read_text())
    assert config["runtime"] == runtime  # recorded for load_predictor, as the worker does
