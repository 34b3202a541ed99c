"""The API's model cache follows the registry: aliases steer predictions at once, a deleted
version is evicted, and a version whose artifact cannot be loaded answers 503 with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.app.inference.conftest import train
from tests.conftest import Stack
from tests.factories.uploads import tweets_csv
from tests.support.stack import wait_until


def _labels(stack: Stack) -> list[str]:
    cache = stack.client.app.state.model_cache  # type: ignore[attr-defined]
    return [key.label for key in cache.loaded_keys()]


def _served(stack: Stack, url: str, body: dict[str, list[str]]) -> int:
    resp = stack.client.post(url, json=body, headers=stack.headers())
    assert resp.status_code == 200, resp.text
    version: int = resp.json()["model"]["version"]
    return version


def test_deleting_a_version_evicts_it_and_a_broken_artifact_is_503(
    stack: Stack, tmp_path: Path
) -> None:
    from ml.backbones.testing import TINY_TEXT_ID

    upload = tmp_path / "t.csv"
    tweets_csv(upload, 60)
    first = train(stack, upload, "text_classification", TINY_TEXT_ID, "lifecycle")
    second = train(stack, upload, "text_classification", TINY_TEXT_ID, "lifecycle")
    url = "/v1/models/lifecycle/predict"
    body = {"inputs": ["what a day"]}
    resp = stack.client.post(f"{url}?version={first.version}", json=body, headers=stack.headers())
    assert resp.status_code == 200, resp.text
    assert f"lifecycle:{first.version}" in _labels(stack)

    # Resolutions are remembered briefly, but alias changes made here apply at once.
    assert _served(stack, url, body) == second.version  # newest ready
    alias_url = "/v1/models/lifecycle/aliases/production"
    moved = stack.client.put(alias_url, json={"version": first.version}, headers=stack.headers())
    assert moved.status_code == 200, moved.text
    assert _served(stack, url, body) == first.version
    assert stack.client.delete(alias_url, headers=stack.headers()).status_code == 200
    assert _served(stack, url, body) == second.version

    resp = stack.client.delete(
        f"/v1/models/lifecycle/versions/{first.version}", headers=stack.headers()
    )
    assert resp.status_code == 200, resp.text
    wait_until(
        lambda: f"lifecycle:{first.version}" not in _labels(stack),
        timeout=10,
        what="eviction of the deleted version",
    )
    resp = stack.client.post(f"{url}?version={first.version}", json=body, headers=stack.headers())
    assert resp.status_code == 404

    # A version never loaded here whose artifact is gone cannot be served.
    broken = train(stack, upload, "text_classification", TINY_TEXT_ID, "lifecycle")
    shutil.rmtree(broken.artifact_dir(stack))
    resp = stack.client.post(f"{url}?version={broken.version}", json=body, headers=stack.headers())
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "model_not_loadable" and resp.json()["detail"]
    assert "retry-after" in resp.headers
