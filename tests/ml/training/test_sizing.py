"""auto's input sizes and time budget, from the dataset's measured inputs and the backbone."""

from dataclasses import replace

import pytest

from ml.backbones.catalog import load_catalog
from ml.datasets.inputs import InputStats, input_stats
from ml.datasets.records import Candidate
from ml.training.hparams import resolve_hyperparameters
from ml.training.sizing import MIN_BUDGET_SECONDS, fine_tuning_budget

CATALOG = load_catalog()
LITE0, MINILM, BERT = (
    CATALOG["efficientnet_lite0"],
    CATALOG["minilm_l6"],
    CATALOG["bert-base-uncased"],
)


def _auto(backbone, stats: InputStats, method: str = "auto", **given) -> dict:
    return resolve_hyperparameters(
        given, method=method, num_train=800, num_val=200, backbone=backbone, device="cpu",
        stats=stats,
    )  # fmt: skip


def test_small_images_fine_tune_below_the_backbone_size_and_probe_at_it() -> None:
    mnist = _auto(LITE0, InputStats(image_min_side=28))
    assert mnist["image_size"] == 64 < LITE0.input_size
    assert mnist["probe_image_size"] == LITE0.input_size
    assert _auto(LITE0, InputStats(image_min_side=8))["image_size"] == 64  # the floor
    assert _auto(LITE0, InputStats(image_min_side=60))["image_size"] == 128


def test_large_images_never_go_above_the_backbone_size() -> None:
    photos = _auto(LITE0, InputStats(image_min_side=2000))
    assert photos["image_size"] == photos["probe_image_size"] == LITE0.input_size
    small_backbone = replace(LITE0, input_size=48)
    assert _auto(small_backbone, InputStats(image_min_side=28))["image_size"] == 48


def test_unmeasured_inputs_keep_the_backbone_defaults() -> None:
    assert _auto(LITE0, InputStats())["image_size"] == LITE0.input_size
    assert _auto(BERT, InputStats())["max_length"] == 128


def test_max_length_follows_the_token_lengths_capped_by_the_backbone() -> None:
    assert _auto(BERT, InputStats(text_tokens_p95=30))["max_length"] == 48  # 30*1.3+2 -> 48
    assert _auto(BERT, InputStats(text_tokens_p95=2))["max_length"] == 16
    assert _auto(BERT, InputStats(text_tokens_p95=1000))["max_length"] == BERT.max_length
    assert _auto(MINILM, InputStats(text_tokens_p95=1000))["max_length"] == MINILM.max_length


def test_given_sizes_win_and_a_probe_only_job_has_one_size() -> None:
    stats = InputStats(image_min_side=28)
    assert _auto(LITE0, stats, image_size=96)["image_size"] == 96
    probe = _auto(LITE0, stats, method="linear_probe")
    assert probe["image_size"] == LITE0.input_size and "probe_image_size" not in probe
    assert _auto(LITE0, stats, method="linear_probe", image_size=96)["image_size"] == 96


def test_the_time_budget_is_auto_only_and_grows_with_the_data() -> None:
    assert "time_budget_seconds" not in _auto(LITE0, InputStats(), method="full")
    assert _auto(LITE0, InputStats(), time_budget_seconds=30)["time_budget_seconds"] == 30
    small = _auto(LITE0, InputStats())["time_budget_seconds"]
    big = resolve_hyperparameters(
        {}, method="auto", num_train=40_000, num_val=10_000, backbone=LITE0, device="cpu"
    )["time_budget_seconds"]
    assert MIN_BUDGET_SECONDS <= small < big


def test_input_stats_measure_the_median_side_and_the_long_texts() -> None:
    images = [Candidate("a", ("x",), str(i), min_side=side) for i, side in enumerate([8, 28, 30])]
    assert input_stats(images) == InputStats(image_min_side=28)
    texts = [Candidate("a", ("x",), str(i), text="word " * n) for i, n in enumerate(range(1, 101))]
    assert input_stats(texts).text_tokens_p95 == 96  # an actual count at or above the 95th pct
    assert input_stats([Candidate("a", ("x",), "k", text="Don't stop!")]).text_tokens_p95 == 5
    assert InputStats.from_dict(InputStats(image_min_side=28).to_dict()) == InputStats(28)
    assert InputStats.from_dict({"image_min_side": "28", "other": 1}) == InputStats()


def test_the_fine_tuning_budget_is_what_is_left_of_three_times_the_probes_cost() -> None:
    # The benchmark's tweets: the classical model and the probe took 14.4 s, the probe 8.5 s.
    assert fine_tuning_budget(8.5, 14.4) == pytest.approx(3 * 8.5 - 14.4)
    assert fine_tuning_budget(47.7, 54.0) == pytest.approx(3 * 47.7 - 54.0)  # Fashion-MNIST
    # A job of a few seconds still gets the floor; one that already spent it all too.
    assert fine_tuning_budget(0.5, 1.0) == MIN_BUDGET_SECONDS
    assert fine_tuning_budget(5.0, 30.0) == MIN_BUDGET_SECONDS
