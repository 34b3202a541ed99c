import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from ml.tasks.base import Fitted
from ml.tasks.classification.training import ClassificationTraining
from ml.training.model import classifier_layer
from ml.training.probe import install_head

TASK = ClassificationTraining()


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three separable clusters in 16 dimensions, offset far from the origin."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.randn(3, 16, generator=torch.Generator().manual_seed(0)) * 3
    return centres[y] + torch.randn(n, 16, generator=g) + 10, y


def _fitted(targets: torch.Tensor, k: int) -> Fitted:
    return TASK.fit_targets(targets, [str(i) for i in range(k)])


def test_probe_separates_clusters_and_installs_into_the_model() -> None:
    x, y = _blobs(120, seed=1)
    train_rows = np.arange(90)
    fit = TASK.probe(x, y, train_rows, _fitted(y[train_rows], 3), seed=0)

    assert TASK.score(TASK.summarize(fit.oof, y, _fitted(y, 3)))[0] == 1.0  # out-of-fold F1
    # Both heads work on raw (uncentred) features: the centring was folded into the bias.
    assert torch.equal((x @ fit.weight.T + fit.bias).argmax(1), y)
    assert torch.equal((x @ fit.train_weight.T + fit.train_bias).argmax(1), y)
    # The served head is the L2 fit on every example: scikit-learn's, at the same strength
    # (its C multiplies the summed loss: C = 1 / (l2 * n)).
    l2 = fit.details["l2_refit"]["all"]
    reference = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-10, max_iter=10_000)
    reference.fit(x.numpy(), y.numpy())
    ours = torch.softmax(x @ fit.weight.T + fit.bias, dim=1).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba(x.numpy()), atol=2e-3)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    model.get_classifier = lambda: model[1]  # type: ignore[assignment]  # timm's interface
    install_head(model, fit.train_weight, fit.train_bias)
    layer = classifier_layer(model)
    assert torch.equal(layer.weight.data, fit.train_weight)
    assert torch.equal(layer.bias.data, fit.train_bias)


def test_noisy_labels_get_stronger_regularisation_than_clean_ones() -> None:
    x, y = _blobs(150, seed=1)
    g = torch.Generator().manual_seed(3)
    noisy = torch.where(
        torch.rand(150, generator=g) < 0.4, torch.randint(0, 3, (150,), generator=g), y
    )
    x = x + torch.randn(150, 16, generator=g) * 3
    rows = np.arange(150)
    clean = TASK.probe(x, y, rows, _fitted(y, 3), seed=0)
    messy = TASK.probe(x, noisy, rows, _fitted(noisy, 3), seed=0)
    assert messy.l2 >= clean.l2
    assert messy.weight.norm() < clean.weight.norm()


def test_multilabel_probe_uses_independent_sigmoids() -> None:
    x, y = _blobs(150, seed=1)
    targets = torch.stack([y == 0, y != 2], dim=1).float()  # overlapping labels
    fitted = _fitted(targets, 2)
    assert fitted.info["multilabel"]
    fit = TASK.probe(x, targets, np.arange(120), fitted, seed=0)
    assert fit.weight.shape == (2, 16) and fit.oof.shape == (150, 2)
    assert torch.equal((fit.oof > 0).float(), targets)
    assert TASK.score(TASK.summarize(fit.oof, targets, fitted))[0] == pytest.approx(1.0)
