import itertools
import math

import pytest
import timm
import torch

from ml.training.loop import HEAD_LR_MULTIPLIER, build_optimizer, lr_factor, set_learning_rate


def test_schedule_warms_up_linearly_then_decays_by_cosine() -> None:
    factors = [lr_factor(step, total_steps=100, warmup_steps=10) for step in range(100)]
    assert factors[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert factors[10] == 1.0
    assert factors[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))
    assert 0 < factors[-1] < 0.001
    assert lr_factor(0, total_steps=5, warmup_steps=0) == 1.0


def test_optimizer_gives_the_head_a_higher_rate_and_no_decay_to_biases_and_norms() -> None:
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    optimizer = build_optimizer(model, 1e-4, 0.01, torch.device("cpu"))
    head = {id(p) for p in model.get_classifier().parameters()}  # type: ignore[operator]
    seen = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            seen += 1
            expected_lr = 1e-4 * (HEAD_LR_MULTIPLIER if id(p) in head else 1.0)
            assert group["base_lr"] == pytest.approx(expected_lr)
            assert group["weight_decay"] == (0.01 if p.ndim > 1 else 0.0)
    assert seen == len(list(model.parameters()))

    set_learning_rate(optimizer, 0.5)
    assert {g["lr"] / g["base_lr"] for g in optimizer.param_groups} == {0.5}
