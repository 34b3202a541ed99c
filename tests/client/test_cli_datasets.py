"""`hone datasets ...` end to end: a folder of photos with a broken file, a CSV with --json."""

from __future__ import annotations

import re
from pathlib import Path

from tests.client.cli_support import Hone, digits_folder
from tests.client.conftest import Live
from tests.factories.uploads import tweets_csv


def test_a_folder_upload_waits_then_shows_the_audit_and_the_dataset_lifecycle(
    live: Live, tmp_path: Path
) -> None:
    hone = Hone(live, tmp_path)
    photos = tmp_path / "photos"
    counts = digits_folder(photos, per_class=3)
    (photos / "7" / "broken.png").write_bytes(b"not an image at all")

    shown = hone("datasets", "upload", str(photos), "--task", "image_classification",
                 "--name", "cli-photos", "--wait").stdout  # fmt: skip

    dataset_id = re.search(r"\b(ds_\w+)", shown).group(1)  # type: ignore[union-attr]
    assert "ready" in shown and "Examples per label" in shown
    for label, n in counts.items():  # one bar per label, as long as its count says
        assert re.search(rf"^\s*{label}\s+{n}\s+█+\s*$", shown, re.M), shown
    assert "Skipped 1 item(s)" in shown and "broken.png" in shown
    assert "Imbalance ratio" in shown
    assert "Train on it" not in shown  # hints are for terminals only

    dataset = hone.json("datasets", "show", dataset_id)
    assert dataset["status"] == "ready" and dataset["label_counts"] == counts
    assert dataset["report"]["skipped"][0]["source"].endswith("broken.png")
    assert dataset_id in hone("datasets", "list").stdout
    assert [d["id"] for d in hone.json("datasets", "list") if d["id"] == dataset_id]

    assert dataset_id in hone("datasets", "delete", dataset_id).stdout
    gone = hone("datasets", "show", dataset_id, ok=False)
    assert gone.code == 1 and gone.stdout == ""
    assert gone.stderr.startswith("hone: ") and len(gone.stderr.splitlines()) == 1
    assert "not found" in gone.stderr.lower() or dataset_id in gone.stderr


def test_a_csv_upload_with_json_prints_exactly_the_dataset(live: Live, tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    counts = tweets_csv(path, 30)

    dataset = Hone(live, tmp_path).json(
        "datasets", "upload", str(path), "--task", "text_classification", "--wait"
    )

    assert dataset["object"] == "dataset" and dataset["status"] == "ready"
    assert dataset["label_counts"] == counts
