"""The task seam itself: a task added as one module trains and serves end to end, and the
registry is the one task↔modality mapping."""

import csv
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ml.artifacts import save_artifact
from ml.datasets.ingest import ingest
from ml.datasets.options import IngestLimits, IngestOptions
from ml.inference.predictor import load_predictor
from ml.tasks import (
    BUILTIN_TASKS,
    PredictOptions,
    UnknownTask,
    get_task,
    register,
    task_names,
    tasks_for,
    unregister,
)
from ml.training.run import run_training
from tests.ml.tasks.toy_task import TextFlag
from tests.ml.training.conftest import FILLER, MakeSpec, Recorder


@pytest.fixture
def toy() -> Iterator[TextFlag]:
    task = TextFlag()
    register(task)
    yield task
    unregister(task.name)


def test_builtin_tasks_are_registered_with_their_modalities() -> None:
    assert set(BUILTIN_TASKS) <= set(task_names())
    assert {t.name for t in tasks_for("image")} == {"image_classification", "image_regression"}
    assert {t.name for t in tasks_for("text")} == {"text_classification", "text_regression"}
    with pytest.raises(UnknownTask, match="known: image_classification"):
        get_task("audio_classification")


def _flag_csv(path: Path, n: int = 60) -> None:
    rng = random.Random(0)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["text", "label"])
        for i in range(n):
            flagged = i % 2 == 0
            words = [rng.choice(FILLER) for _ in range(6)] + (["urgent"] * 2 if flagged else [])
            rng.shuffle(words)
            writer.writerow([" ".join(words) + f" {i}", "yes" if flagged else "no"])


def test_a_task_added_in_one_module_trains_and_serves(
    toy: TextFlag, tmp_path: Path, make_spec: MakeSpec
) -> None:
    assert toy in tasks_for("text")
    upload = tmp_path / "flags.csv"
    _flag_csv(upload)
    options = IngestOptions(task="text_flag", filename="flags.csv")
    result = ingest(upload, options, IngestLimits(), tmp_path / "datasets", tmp_path / "scratch")
    assert result.report["flagged"] == 30  # the task's own audit section

    outcome = run_training(make_spec(result.path, "text", method="full"), Recorder())
    assert outcome.task == "text_flag" and outcome.metrics["accuracy"] >= 0.8
    config = outcome.artifact_config(make_spec(result.path, "text").backbone, {})
    save_artifact(tmp_path / "artifact", outcome.model, config, outcome.tokenizer)

    predictor = load_predictor(tmp_path / "artifact")
    batch = predictor.preprocess(["urgent urgent the a", "we some new about"])
    answers = predictor.format(predictor.postprocess(predictor.forward(batch)), PredictOptions())
    assert [a["flagged"] for a in answers] == [True, False]
