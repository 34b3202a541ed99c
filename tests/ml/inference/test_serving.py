import json
from pathlib import Path

import pytest

from ml.inference import load_predictor, prepare_serving
from ml.inference.serving import _choose
from tests.ml.inference.builders import image_artifact, image_bytes, text_artifact, texts


def _torch_labels(artifact_dir: Path, inputs: list) -> list[int]:
    predictor = load_predictor(artifact_dir, runtime="torch")
    return predictor.forward(predictor.preprocess(inputs)).argmax(axis=1).tolist()


def test_prepare_serving_records_a_choice_that_keeps_accuracy(tmp_path: Path) -> None:
    artifact_dir = image_artifact(tmp_path / "v1", ["a", "b", "c"])
    images = [image_bytes(i) for i in range(20)]
    labels = _torch_labels(artifact_dir, images)
    labels[0] = (labels[0] + 1) % 3  # torch is then 95% accurate, not trivially perfect

    report = prepare_serving(artifact_dir, images, labels)

    candidates = report["candidates"]
    assert set(candidates) == {"torch", "onnx_fp32", "onnx_int8"}
    assert all(c["status"] == "ok" for c in candidates.values())
    assert candidates["torch"]["accuracy"] == pytest.approx(0.95)
    chosen = candidates[report["chosen"]]
    assert chosen["eligible"]
    assert chosen["accuracy"] >= 0.95 - 0.005
    assert chosen["max_abs_diff"] <= 0.05
    assert candidates["onnx_fp32"]["max_abs_diff"] < 1e-4
    for result in candidates.values():
        assert result["latency_ms"]["batch_1"] > 0
        assert result["latency_ms"]["batch_8"] > 0

    config = json.loads((artifact_dir / "config.json").read_text())
    assert config["runtime"] == report["chosen"]
    assert config["runtime_report"] == report
    assert config["labels"] == ["a", "b", "c"]  # the rewrite kept everything else
    assert sorted(p.name for p in artifact_dir.iterdir()) == [
        "config.json",
        "model.int8.onnx",
        "model.onnx",
        "model.safetensors",
    ]
    assert load_predictor(artifact_dir).runtime == report["chosen"]


def test_probabilities_must_stay_close_to_torch(tmp_path: Path) -> None:
    artifact_dir = image_artifact(tmp_path / "v1", ["a", "b"])
    images = [image_bytes(i) for i in range(5)]
    report = prepare_serving(artifact_dir, images, None, max_abs_diff=0.0, max_examples=3)
    assert report["examples"] == 3
    # ONNX differs from eager torch by float rounding, which a zero tolerance refuses
    assert report["chosen"] == "torch"
    assert not report["candidates"]["onnx_fp32"]["eligible"]
    assert report["candidates"]["torch"]["accuracy"] is None


def test_a_failed_export_is_recorded_and_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_export(*args: object) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr("ml.inference.serving.export_onnx", broken_export)
    artifact_dir = image_artifact(tmp_path / "v1", ["a", "b"])
    report = prepare_serving(artifact_dir, [image_bytes(1), image_bytes(2)], [0, 1])

    assert report["chosen"] == "torch"
    for runtime in ("onnx_fp32", "onnx_int8"):
        assert report["candidates"][runtime] == {
            "status": "skipped",
            "reason": "RuntimeError: unsupported operator",
        }
    assert not list(artifact_dir.glob("*.onnx"))
    assert not list(artifact_dir.glob(".*"))  # no half-written temporary files either


def test_multilabel_text_is_judged_by_agreement_with_torch(tmp_path: Path) -> None:
    artifact_dir = text_artifact(tmp_path / "v1", ["a", "b", "c"], multilabel=True)
    report = prepare_serving(artifact_dir, texts(12), None, candidates=("onnx_fp32",))
    fp32 = report["candidates"]["onnx_fp32"]
    assert fp32["agreement"] == 1.0
    assert fp32["accuracy"] is None
    assert report["chosen"] in ("torch", "onnx_fp32")
    assert "onnx_int8" not in report["candidates"]
    assert not (artifact_dir / "model.int8.onnx").exists()


def _ok(latency: float, accuracy: float | None, diff: float = 0.0) -> dict:
    return {
        "status": "ok",
        "latency_ms": {"batch_1": latency, "batch_8": latency * 4},
        "accuracy": accuracy,
        "agreement": 1.0,
        "max_abs_diff": diff,
    }


def test_the_fastest_runtime_within_half_a_point_of_torch_wins() -> None:
    results = {
        "torch": _ok(40.0, 0.900),
        "onnx_fp32": _ok(20.0, 0.896),  # 0.4 points below torch: allowed
        "onnx_int8": _ok(9.0, 0.890),  # 1 point below: refused although fastest
    }
    chosen, _ = _choose(results, ["torch", "onnx_fp32", "onnx_int8"], 0.005, 0.05)
    assert chosen == "onnx_fp32"
    assert results["onnx_int8"]["eligible"] is False
    skipped = {"status": "skipped", "reason": "x"}
    chosen, _ = _choose(results | {"onnx_fp32": skipped}, ["onnx_fp32", "onnx_int8"], 0.005, 0.05)
    assert chosen == "torch"


def test_validation_inputs_are_required(tmp_path: Path) -> None:
    artifact_dir = image_artifact(tmp_path / "v1", ["a", "b"])
    with pytest.raises(ValueError):
        prepare_serving(artifact_dir, [], None)
    assert "runtime" not in json.loads((artifact_dir / "config.json").read_text())
