"""A team takes its model out of Hone: `GET /v1/models/{name}/versions/{version}/artifact` over
HTTP (a real uvicorn server), checked against its sha256 header and the archive's SHA256SUMS,
and the downloaded files loaded with plain timm / transformers by the README's lines, in a
Python that cannot import Hone, give the served model's probabilities."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models import ModelVersion, RegisteredModel
from ml.backbones.testing import TINY_TEXT_ID
from ml.inference.onnx_export import ONNX_FILES
from tests.app.inference.conftest import Trained, api_server, image_model, text_model, train
from tests.app.jobs.flows import problem
from tests.conftest import Stack
from tests.factories.uploads import image_bytes, two_view_csv
from tests.support.api_process import ApiProcess
from tests.support.db import stack_session
from tests.support.docs import readme_python

__all__ = ["api_server", "image_model", "text_model"]

pytestmark = pytest.mark.timeout(600)

SUMS = "SHA256SUMS"

# README.md's lines ("Take a model out"): a downloaded image classifier loaded with plain timm,
# then a text classifier with plain transformers, each printing the calibrated probabilities
# (what /predict's `scores` are).
TIMM_README, TRANSFORMERS_README = readme_python("Take a model out")
README_TEXTS = ["what a great flight", "my bag is lost again", "landing at 5pm"]

# Prepended to the README's lines: any import of Hone's own packages fails, so the lines are
# shown to need nothing but the downloaded folder and the public libraries.
NO_HONE = """
import sys

class _NoHone:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"app", "ml", "hone", "workers", "tests"}:
            raise ImportError(f"the README's lines must not import {name}")
        return None

sys.meta_path.insert(0, _NoHone())
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
"""


def _url(model: Trained) -> str:
    return f"/v1/models/{model.name}/versions/{model.version}/artifact"


def download(server: ApiProcess, stack: Stack, model: Trained, dest: Path) -> dict[str, str]:
    """Stream the archive to `dest`; (its response headers), after checking its sha256."""
    digest, size = hashlib.sha256(), 0
    with (
        httpx.stream("GET", server.url + _url(model), headers=stack.headers(), timeout=60) as resp,
        dest.open("wb") as out,
    ):
        assert resp.status_code == 200, resp.read()
        for chunk in resp.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        headers = dict(resp.headers)
    assert headers["content-type"] == "application/zip"
    assert int(headers["content-length"]) == size
    assert headers["x-hone-artifact-sha256"] == digest.hexdigest()
    filename = f"{model.name}-v{model.version}.zip"
    assert headers["content-disposition"] == f'attachment; filename="{filename}"'
    return headers


def extract(archive: Path, folder: Path) -> dict[str, str]:
    """Unzip into `folder`; {path: sha256} of every file, each checked against SHA256SUMS."""
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        zf.extractall(folder)
    assert names.count(SUMS) == 1 and len(set(names)) == len(names), names
    sums: dict[str, str] = {}
    for line in (folder / SUMS).read_text().splitlines():
        hexdigest, path = line.split("  ", 1)  # sha256sum's format: two spaces
        sums[path] = hexdigest
    assert set(sums) == set(names) - {SUMS}, (sums, names)
    for path, hexdigest in sums.items():
        assert hashlib.sha256((folder / path).read_bytes()).hexdigest() == hexdigest, path
    return sums


@pytest.fixture(scope="module")
def downloaded(
    stack: Stack,
    api_server: ApiProcess,
    image_model: Trained,
    text_model: Trained,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """A folder holding digits/ and tweets/, downloaded and extracted as a user would."""
    root = tmp_path_factory.mktemp("downloads")
    for model in (image_model, text_model):
        download(api_server, stack, model, root / f"{model.name}.zip")
        extract(root / f"{model.name}.zip", root / model.name)
    yield root


@pytest.mark.parametrize("kind", ["image", "text"])
def test_the_archive_holds_every_file_of_the_artifact_with_its_digest(
    kind: str,
    stack: Stack,
    api_server: ApiProcess,
    image_model: Trained,
    text_model: Trained,
    tmp_path: Path,
) -> None:
    model = image_model if kind == "image" else text_model
    headers = download(api_server, stack, model, tmp_path / "a.zip")
    sums = extract(tmp_path / "a.zip", tmp_path / "a")
    artifact = model.artifact_dir(stack)
    stored = {
        p.relative_to(artifact).as_posix()
        for p in artifact.rglob("*")
        if p.is_file() and p.name != ".published"
    }
    assert set(sums) == stored
    assert {"model.safetensors", "config.json"} <= stored
    if kind == "text":
        assert {"hf/config.json", "hf/tokenizer.json"} <= stored
    version = stack.client.get(
        f"/v1/models/{model.name}/versions/{model.version}", headers=stack.headers()
    ).json()
    if version["runtime"] in ONNX_FILES:
        assert ONNX_FILES[version["runtime"]] in stored
    for path in stored:
        assert hashlib.sha256((artifact / path).read_bytes()).hexdigest() == sums[path], path

    # Built once, then served from this host's cache; when the cache loses it, built again
    # to the very same bytes.
    same = ("x-hone-artifact-sha256", "content-length")
    cached = download(api_server, stack, model, tmp_path / "b.zip")
    assert [cached[h] for h in same] == [headers[h] for h in same]
    cache = stack.backend.settings().local_cache_dir / "archives"
    assert any(cache.glob("*.zip"))
    for path in cache.iterdir():
        path.unlink()
    again = download(api_server, stack, model, tmp_path / "c.zip")
    assert [again[h] for h in same] == [headers[h] for h in same]


def test_another_projects_model_unknown_versions_and_unready_ones_are_refused(
    stack: Stack, image_model: Trained
) -> None:
    client, name = stack.client, image_model.name
    other = client.get(_url(image_model), headers=stack.headers(stack.key_b))
    problem(other, 404, "model_not_found")
    problem(client.get(f"/v1/models/{name}/versions/999/artifact", headers=stack.headers()),
            404, "version_not_found")  # fmt: skip
    problem(client.get("/v1/models/nope/versions/1/artifact", headers=stack.headers()),
            404, "model_not_found")  # fmt: skip
    assert client.get(_url(image_model)).status_code == 401
    with stack_session(stack) as session:
        model = session.query(RegisteredModel).filter_by(name=name).first()
        assert model is not None
        row = ModelVersion(
            model_id=model.id, version=77, status="registering", task=model.task,
            backbone="tiny_image", artifact_uri="/nonexistent",
        )  # fmt: skip
        session.add(row)
    try:
        resp = client.get(f"/v1/models/{name}/versions/77/artifact", headers=stack.headers())
        problem(resp, 409, "version_not_ready")
    finally:
        with stack_session(stack) as session:
            session.query(ModelVersion).filter_by(id=row.id).delete()


def run_readme_lines(lines: str, cwd: Path) -> list[tuple[Any, dict[str, float]]]:
    """Run the README's lines in a fresh Python that cannot import Hone; each printed line is
    `<name or repr(text)> {label: probability}`."""
    script = cwd / "readme_lines.py"
    script.write_text(NO_HONE + textwrap.dedent(lines))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = []
    for line in done.stdout.splitlines():
        at = line.index(" {")
        rows.append((line[:at], ast.literal_eval(line[at + 1 :])))
    return rows


def served_scores(server: ApiProcess, stack: Stack, model: Trained, inputs: list[Any]) -> Any:
    resp = httpx.post(
        f"{server.url}/v1/models/{model.name}/predict",
        json={"inputs": inputs, "top_k": 1000, "version": model.version},
        headers=stack.headers(),
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    return [{s["label"]: s["score"] for s in p["scores"]} for p in resp.json()["predictions"]]


def assert_same(plain: dict[str, float], served: dict[str, float]) -> None:
    assert plain.keys() == served.keys()
    for label, score in served.items():
        assert abs(plain[label] - score) <= 1e-4, (plain, served)


def test_plain_timm_and_the_readme_lines_give_the_served_probabilities(
    stack: Stack, api_server: ApiProcess, image_model: Trained, downloaded: Path
) -> None:
    inbox = downloaded / "inbox"
    inbox.mkdir()
    photos = {
        "a.png": image_bytes(size=(40, 30), seed=1),
        "b.jpg": image_bytes(size=(64, 64), seed=2, fmt="JPEG"),
        "c.png": image_bytes(size=(23, 57), seed=3, mode="L"),
        "d.png": image_bytes(size=(300, 200), seed=4),
    }
    for name, data in photos.items():
        (inbox / name).write_bytes(data)
    plain = run_readme_lines(TIMM_README, downloaded)
    assert [name for name, _ in plain] == sorted(photos)
    inputs = [{"image_base64": base64.b64encode(photos[n]).decode()} for n in sorted(photos)]
    for (_, probs), served in zip(plain, served_scores(api_server, stack, image_model, inputs),
                                  strict=True):  # fmt: skip
        assert_same(probs, served)


def test_plain_transformers_and_the_readme_lines_give_the_served_probabilities(
    stack: Stack, api_server: ApiProcess, text_model: Trained, downloaded: Path
) -> None:
    assert f"texts = {README_TEXTS!r}".replace("'", '"') in TRANSFORMERS_README
    plain = run_readme_lines(TRANSFORMERS_README, downloaded)
    assert [ast.literal_eval(text) for text, _ in plain] == README_TEXTS
    served = served_scores(api_server, stack, text_model, README_TEXTS)
    for (_, probs), answer in zip(plain, served, strict=True):
        assert_same(probs, answer)


@pytest.fixture(scope="module")
def tfidf_model(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A text version `auto` kept as the probe beside TF-IDF (two-view texts: each half of
    them tells its label only to one of the two)."""
    path = two_view_csv(tmp_path_factory.mktemp("txt") / "two-view.csv", 40)
    hyperparameters = {"epochs": 1, "batch_size": 16}
    trained = train(stack, path, "text_classification", TINY_TEXT_ID, "two-view",
                    method="auto", hyperparameters=hyperparameters)  # fmt: skip
    config = json.loads((trained.artifact_dir(stack) / "config.json").read_text())
    assert config["preprocessing"]["tfidf"]["num_features"] > 0, config["method_reason"]
    return trained


def test_the_readme_lines_give_a_tfidf_blends_served_probabilities(
    stack: Stack, api_server: ApiProcess, tfidf_model: Trained, tmp_path: Path
) -> None:
    download(api_server, stack, tfidf_model, tmp_path / "two-view.zip")
    sums = extract(tmp_path / "two-view.zip", tmp_path / "tweets")  # the README's folder name
    assert {"tfidf/vocabulary.json", "tfidf/idf.safetensors"} <= set(sums)
    plain = run_readme_lines(TRANSFORMERS_README, tmp_path)
    served = served_scores(api_server, stack, tfidf_model, README_TEXTS)
    for (_, probs), answer in zip(plain, served, strict=True):
        assert_same(probs, answer)
