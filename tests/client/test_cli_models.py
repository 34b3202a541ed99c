"""`hone models ...` and `hone predict` end to end on the shared trained models."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.client.cli_support import Hone, digits_folder
from tests.client.conftest import Live, Trained


def test_models_show_the_metrics_the_confusion_matrix_and_aliases(
    live: Live, image_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    name, version = image_model.name, image_model.version
    assert re.search(
        rf"^\s*{name}\s+image_classification\s+{version}\b", hone("models", "list").stdout, re.M
    )
    assert {m["name"] for m in hone.json("models", "list")} >= {name}

    shown = hone("models", "show", name).stdout
    assert "Versions" in shown and "Per label" in shown and "Confusion matrix" in shown
    found = hone.json("models", "show", f"{name}@{version}")
    metrics = found["metrics"]
    # The matrix as printed: one row per true label, its counts as the API has them.
    for label, row in zip(found["labels"], metrics["confusion_matrix"], strict=True):
        cells = " +".join(str(n) for n in row)
        assert re.search(rf"^ {label} +{cells}$", shown, re.M), (label, row, shown)
    for label, scores in metrics["per_label"].items():
        assert re.search(
            rf"^ {label} +{scores['precision']:.3f} +{scores['recall']:.3f}", shown, re.M
        )
    assert f"accuracy {metrics['accuracy']:.3f}" in shown

    assert "production" in hone("models", "alias", name, "production", str(version)).stdout
    assert hone.json("models", "show", name)["aliases"] == {"production": version}
    assert hone.json("models", "show", f"{name}@production")["version"] == version
    missing = hone("models", "show", f"{name}@nosuchalias", ok=False)
    assert missing.code == 2 and "no alias 'nosuchalias'" in missing.stderr


def test_models_download_extracts_the_artifact_and_says_how_to_load_it(
    live: Live, text_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    out = tmp_path / "out"

    shown = hone(
        "models", "download", f"{text_model.name}@{text_model.version}", "-o", str(out)
    ).stdout

    assert f"Downloaded to {out}" in shown and "transformers" in shown
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    listed = hone.json("models", "download", text_model.name, "-o", str(tmp_path / "again"))
    assert listed["version"] == text_model.version and "model.safetensors" in listed["files"]


def test_predict_from_files_a_folder_and_json_lines_on_stdin(
    live: Live, image_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    photos = tmp_path / "photos"
    digits_folder(photos, per_class=4)  # 40 images: two requests of at most 32
    images = sorted(photos.rglob("*.png"))

    shown = hone(
        "predict", image_model.name, str(images[0]), str(images[-1]), "--top-k", "2"
    ).stdout
    assert str(images[0]) in shown and str(images[-1]) in shown
    assert len(re.findall(r"^ label +score$", shown, re.M)) == 2

    rows = hone(
        "predict", f"{image_model.name}@{image_model.version}", str(photos), "--json"
    ).jsonl()
    assert [r["input"] for r in rows] == [str(p) for p in images]
    assert all(r["model"]["version"] == image_model.version and r["label"] for r in rows)
    right = sum(r["label"] == Path(r["input"]).parent.name for r in rows)
    assert right >= 20, rows  # a trained model, not noise

    lines = "".join(json.dumps({"image_path": str(p)}) + "\n" for p in images[:3])
    piped = hone("predict", image_model.name, "-", "--json", "--top-k", "3", stdin=lines).jsonl()
    assert [r["input"] for r in piped] == [str(p) for p in images[:3]]
    assert all(len(r["scores"]) == 3 for r in piped)


def test_predict_texts_from_flags_and_stdin(
    live: Live, text_model: Trained, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)

    rows = hone("predict", text_model.name, "--text", "what a lovely day", "--text", "awful",
                "--json").jsonl()  # fmt: skip
    assert [r["input"] for r in rows] == ["what a lovely day", "awful"]
    assert {r["label"] for r in rows} <= {"positive", "negative", "neutral"}

    lines = '{"text": "so happy today"}\n\n{"text": "this is terrible"}\n'
    shown = hone("predict", text_model.name, "-", stdin=lines).stdout
    assert "so happy today  ->" in shown and "this is terrible  ->" in shown

    bad = hone("predict", text_model.name, "-", stdin='{"txt": 1}\n', ok=False)
    assert bad.code == 2 and "stdin line 1" in bad.stderr
