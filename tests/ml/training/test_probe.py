import pytest
import torch

from ml.training.evaluation import score
from ml.training.model import classifier_layer
from ml.training.probe import fit_probe, install_head


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three separable clusters in 16 dimensions, offset far from the origin."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.randn(3, 16, generator=torch.Generator().manual_seed(0)) * 3
    return centres[y] + torch.randn(n, 16, generator=g) + 10, y


def test_probe_separates_clusters_and_installs_into_the_model() -> None:
    x, y = _blobs(90, seed=1)
    vx, vy = _blobs(30, seed=2)
    fit = fit_probe(
        x,
        y,
        vx,
        vy,
        num_labels=3,
        multilabel=False,
        class_weights=None,
        score=lambda logits, truth: score(logits, truth, False),
    )
    assert fit.score[0] == 1.0  # val macro-F1
    # The head works on raw (uncentred) features: the centring was folded into the bias.
    assert torch.equal((vx @ fit.weight.T + fit.bias).argmax(1), vy)
    torch.testing.assert_close(vx @ fit.weight.T + fit.bias, fit.val_logits, atol=1e-4, rtol=1e-4)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model.get_classifier = lambda: model[1]  # type: ignore[assignment]  # timm's interface
    install_head(model, fit)
    layer = classifier_layer(model)
    assert torch.equal(layer.weight.data, fit.weight) and torch.equal(layer.bias.data, fit.bias)


def test_noisy_labels_get_stronger_regularisation_than_clean_ones() -> None:
    x, y = _blobs(90, seed=1)
    vx, vy = _blobs(60, seed=2)
    g = torch.Generator().manual_seed(3)
    noisy = torch.where(
        torch.rand(90, generator=g) < 0.4, torch.randint(0, 3, (90,), generator=g), y
    )
    x = x + torch.randn(90, 16, generator=g) * 3
    kwargs = {
        "num_labels": 3,
        "multilabel": False,
        "class_weights": None,
        "score": lambda logits, truth: score(logits, truth, False),
    }
    clean = fit_probe(x, y, vx, vy, **kwargs)  # type: ignore[arg-type]
    messy = fit_probe(x, noisy, vx, vy, **kwargs)  # type: ignore[arg-type]
    assert messy.l2 >= clean.l2
    assert messy.weight.norm() < clean.weight.norm()


def test_multilabel_probe_uses_independent_sigmoids() -> None:
    x, y = _blobs(120, seed=1)
    targets = torch.stack([y == 0, y != 2], dim=1).float()  # overlapping labels
    vx, vy = _blobs(30, seed=2)
    vtargets = torch.stack([vy == 0, vy != 2], dim=1).float()
    fit = fit_probe(
        x,
        targets,
        vx,
        vtargets,
        num_labels=2,
        multilabel=True,
        class_weights=None,
        score=lambda logits, truth: score(logits, truth, True),
    )
    assert fit.weight.shape == (2, 16)
    assert torch.equal((fit.val_logits > 0).float(), vtargets)
    assert fit.score[0] == pytest.approx(1.0)
