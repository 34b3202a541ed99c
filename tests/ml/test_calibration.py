import torch
import torch.nn.functional as F

from ml.calibration import expected_calibration_error, fit_temperature, probabilities


def _overconfident(n: int = 2000, k: int = 4, scale: float = 4.0) -> tuple[torch.Tensor, ...]:
    """Logits whose true temperature is `scale`: softmax(logits / scale) is calibrated."""
    g = torch.Generator().manual_seed(0)
    calibrated = torch.randn(n, k, generator=g) * 1.5
    targets = torch.multinomial(torch.softmax(calibrated, dim=1), 1, generator=g).squeeze(1)
    return calibrated * scale, targets


def test_temperature_recovers_scale_and_reduces_nll_and_ece() -> None:
    logits, targets = _overconfident()
    temperature = fit_temperature(logits, targets)

    assert 3.0 < temperature < 5.0
    assert F.cross_entropy(logits / temperature, targets) < F.cross_entropy(logits, targets)
    before = expected_calibration_error(probabilities(logits, 1.0, False), targets)
    after = expected_calibration_error(probabilities(logits, temperature, False), targets)
    assert after < before / 3


def test_multilabel_temperature_reduces_bce() -> None:
    g = torch.Generator().manual_seed(1)
    calibrated = torch.randn(1000, 3, generator=g)
    targets = (torch.rand(1000, 3, generator=g) < torch.sigmoid(calibrated)).float()
    logits = calibrated * 3
    temperature = fit_temperature(logits, targets, multilabel=True)
    assert 2.0 < temperature < 4.0
    before = F.binary_cross_entropy_with_logits(logits, targets)
    assert F.binary_cross_entropy_with_logits(logits / temperature, targets) < before
    ece_before = expected_calibration_error(torch.sigmoid(logits), targets, multilabel=True)
    ece_after = expected_calibration_error(
        probabilities(logits, temperature, True), targets, multilabel=True
    )
    assert ece_after < ece_before


def test_ece_of_a_known_case() -> None:
    # Two predictions at confidence 0.9, one right and one wrong: |0.5 - 0.9| = 0.4.
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1]])
    assert abs(expected_calibration_error(probs, torch.tensor([0, 1])) - 0.4) < 1e-6
    # Perfect confidence and always right: no gap.
    assert expected_calibration_error(torch.eye(2), torch.tensor([0, 1])) == 0.0


def test_a_validation_set_without_mistakes_is_not_sharpened() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, -1.0]])
    assert fit_temperature(logits, torch.tensor([0, 1, 0])) == 1.0
    # One mistake bounds the fit: an overconfident model is then softened as usual.
    wrong = torch.tensor([[8.0, 0.0], [0.0, 9.0], [7.0, -1.0], [9.0, 0.0]])
    assert fit_temperature(wrong, torch.tensor([0, 1, 0, 1])) > 1.0
