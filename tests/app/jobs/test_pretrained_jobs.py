"""The two offline pretrained backbones, end to end through the API on small real data.

A linear probe keeps them to seconds; the bars are far above what a model that learned
nothing would score (digits: chance is 0.1; tweets: always answering the most frequent label
gives a macro-F1 near 0.2), so a broken backbone or preprocessing fails them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.jobs.flows import create_job, upload, wait_for_job
from tests.conftest import Stack
from tests.factories.uploads import digits_zip, tweets_csv

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded(stack: Stack) -> Stack:
    """What a model learns does not depend on the registry's backend: train once."""
    if stack.backend.name != "embedded":
        pytest.skip("pretrained backbones are trained on the embedded stack only")
    return stack


def _train(stack: Stack, dataset_id: str, backbone: str, name: str) -> dict:
    job = create_job(stack.client, stack.key_a, dataset_id, name, backbone=backbone,
                     method="linear_probe")  # fmt: skip
    done = wait_for_job(stack.client, stack.key_a, job["id"], timeout=600)
    assert done["status"] == "succeeded", done["error"]
    version = stack.client.get(f"/v1/models/{name}/versions/1", headers=stack.headers())
    assert version.status_code == 200, version.text
    body: dict = version.json()
    manifest = body["manifest"]
    assert manifest["backbone"]["id"] == backbone and manifest["backbone"]["source"] == "package"
    assert len(manifest["backbone"]["weights_sha256"]) == 64  # the real weights' hash
    assert manifest["method"] == "linear_probe"
    return body


def test_efficientnet_lite0_learns_digits(embedded: Stack, tmp_path: Path) -> None:
    stack = embedded
    digits_zip(tmp_path / "digits.zip", per_class=10)
    dataset = upload(stack.client, stack.key_a, tmp_path / "digits.zip", "image_classification")
    version = _train(stack, dataset, "efficientnet_lite0", "digits-lite0")
    assert version["metrics"]["accuracy"] >= 0.6


def test_minilm_l6_learns_tweet_sentiment(embedded: Stack, tmp_path: Path) -> None:
    stack = embedded
    tweets_csv(tmp_path / "tweets.csv", 120)
    dataset = upload(stack.client, stack.key_a, tmp_path / "tweets.csv", "text_classification")
    version = _train(stack, dataset, "minilm_l6", "tweets-minilm")
    assert version["metrics"]["macro_f1"] >= 0.4
    assert set(version["labels"]) == {"negative", "neutral", "positive"}
