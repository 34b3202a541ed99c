"""`auto`'s text probe reads TF-IDF beside the encoder's features when the training rows' out-of-
fold outputs say the blend is better, and the version it writes serves that blend."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.artifacts import load_artifact, save_artifact
from ml.inference import load_predictor
from ml.tasks import ProbeFit, get_task
from ml.training.blend import blended, choose_blend
from ml.training.run import run_training
from ml.training.text_classifier import MeanPooledClassifier
from tests.factories.uploads import two_view_texts
from tests.ml.training.conftest import MakeSpec, Recorder, write_dataset


def _fit(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> ProbeFit:
    """A head as the probe hands it back, its out-of-fold outputs those of the head itself."""
    return ProbeFit(weight, bias, weight, bias, 0.1, features @ weight.T + bias, 5)


def test_the_blend_is_one_head_over_both_features_each_model_weighed_by_its_spread() -> None:
    torch.manual_seed(0)
    x1, x2 = torch.randn(50, 6), torch.randn(50, 4)
    first = _fit(x1, torch.randn(3, 6), torch.randn(3))
    # The second model's logits are a hundredth of the first's: without the spreads it
    # would count for nothing at any share.
    second = _fit(x2, torch.randn(3, 4) / 100, torch.randn(3) / 100)
    share = 0.5
    blend = blended(first, second, share)
    both = torch.cat([x1, x2], dim=1)
    served = both @ blend.weight.T + blend.bias
    torch.testing.assert_close(served, blend.oof)
    s1, s2 = first.oof.std(), second.oof.std()
    expected = (share * s1 + (1 - share) * s2) * (
        share * first.oof / s1 + (1 - share) * second.oof / s2
    )
    torch.testing.assert_close(blend.oof, expected)
    torch.testing.assert_close(both @ blend.train_weight.T + blend.train_bias, blend.oof)
    # Share 1 is the first model exactly.
    alone = blended(first, second, 1.0)
    torch.testing.assert_close(alone.oof, first.oof)


def test_the_share_is_chosen_on_the_training_rows_and_the_probe_alone_wins_ties() -> None:
    task = get_task("text_classification")
    rng = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 3, (120,), generator=rng)
    fitted = task.fit_targets(targets, ["a", "b", "c"])
    truth = torch.nn.functional.one_hot(targets, 3).float() * 4
    half = torch.arange(120) % 2 == 0
    noise = torch.randn(120, 3, generator=rng)

    def fit(outputs: torch.Tensor) -> ProbeFit:
        return ProbeFit(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3, 2), torch.zeros(3),
                        0.1, outputs, 5)  # fmt: skip

    # Each model is right on its own half of the rows and guesses on the other.
    probe = fit(torch.where(half[:, None], truth, noise))
    tfidf = fit(torch.where(half[:, None], noise, truth))
    train_rows = np.arange(100)
    mixed = choose_blend(task, probe, tfidf, targets, train_rows, fitted)
    assert 0.0 < mixed.share < 1.0
    assert mixed.tried[0]["share"] == 1.0
    # Noise beside a perfect probe never helps: share 1 is kept.
    clean = choose_blend(task, fit(truth), fit(noise), targets, train_rows, fitted)
    assert clean.share == 1.0


@pytest.fixture(scope="module")
def two_view_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [([label], text) for text, label in two_view_texts(40)]
    return write_dataset(tmp_path_factory.mktemp("ds"), "text_classification", rows)


def test_auto_serves_the_probe_beside_tfidf_when_each_reads_what_the_other_cannot(
    two_view_dataset: Path, make_spec: MakeSpec, tmp_path: Path
) -> None:
    hooks = Recorder()
    spec = make_spec(two_view_dataset, "text", hyperparameters={"batch_size": 16, "epochs": 1})
    outcome = run_training(spec, hooks)
    candidates = {c["name"]: c for c in outcome.metrics["candidates"]}
    headline = "val_macro_f1"
    assert 0.0 < outcome.hyperparameters["probe_tfidf_share"] < 1.0
    assert "beside TF-IDF" in candidates["linear_probe"]["description"]
    assert outcome.method == "linear_probe", outcome.method_reason
    assert (
        candidates["linear_probe"]["validation"][headline]
        > (candidates["classical"]["validation"][headline])
    )
    model = outcome.model
    assert isinstance(model, MeanPooledClassifier) and model.extra_features > 0
    assert outcome.preprocessing["tfidf"]["num_features"] == model.extra_features
    blended_event = [e for e in hooks.of("info") if "beside TF-IDF" in e["message"]]
    assert (
        blended_event
        and blended_event[0]["data"]["tfidf_share"]
        == (outcome.hyperparameters["probe_tfidf_share"])
    )

    # The version serves the blend: its artifact reloads bit for bit and answers new texts
    # of both kinds.
    config = outcome.artifact_config(spec.backbone, {"torch": torch.__version__})
    save_artifact(tmp_path / "v1", model, config, outcome.tokenizer, files=outcome.artifact_files)
    reloaded = load_artifact(tmp_path / "v1").model
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[name], tensor, rtol=0, atol=0)
    fresh = two_view_texts(20, seed=1)
    predictor = load_predictor(tmp_path / "v1", runtime="torch")
    answers = predictor.predict([text for text, _ in fresh])
    predicted = [answer["label"] for answer in answers]
    accuracy = np.mean([p == label for p, (_, label) in zip(predicted, fresh, strict=True)])
    assert accuracy >= 0.9
