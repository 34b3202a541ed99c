"""The dashboard in a real Chromium against a real API and worker: sign in, upload a dataset
and read its audit, start a job and watch its curves move, look inside a trained version and
try it. Every test leaves a full-page screenshot (tests/ui/conftest.py `shot`)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from ml.backbones.testing import TINY_IMAGE_ID
from tests.app.inference.conftest import Trained
from tests.conftest import Stack
from tests.factories.uploads import digits_zip, write_zip
from tests.ui.conftest import shot, sign_in

# Long enough to watch it train for a while, cancelled once the test has seen that.
WATCHED_JOB = {"method": "full", "epochs": "40", "batch_size": "4", "image_size": "32"}


def messy_digits(path: Path) -> Path:
    """Digits with what an audit must find: a corrupt file, an unsupported one, an exact
    copy, the same image under two labels, and a rare label."""
    clean = path.with_name("clean.zip")
    digits_zip(clean, per_class=6)
    with zipfile.ZipFile(clean) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    nines = sorted(n for n in entries if n.startswith("9/"))
    for name in nines[2:]:
        del entries[name]  # 9 keeps two examples: rarer than the rest
    one = sorted(n for n in entries if n.startswith("1/"))[0]
    entries["1/copy-of-first.png"] = entries[one]  # exact duplicate: removed
    entries["7/looks-like-a-one.png"] = entries[one]  # conflicting duplicate: kept, reported
    entries["3/broken.png"] = b"\x89PNG\r\n\x1a\nthis is not really an image"
    entries["3/notes.docx"] = b"not a picture"
    write_zip(path, entries)
    clean.unlink()
    return path


def test_sign_in(page: Any, stack: Stack, tmp_path: Path) -> None:
    page.goto("/ui/datasets")
    page.wait_for_url("**/ui/signin?next=/ui/datasets")
    shot(page, tmp_path, "01-sign-in")
    page.fill("#api_key", "hone_not-a-real-key-at-all-000000000000")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.fill("#api_key", stack.key_a)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/datasets")  # back where the user was going
    cookie = next(c for c in page.context.cookies() if c["name"] == "hone_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert stack.key_a not in cookie["value"] and stack.key_a not in page.content()
    expect(page.locator(".side-foot strong")).to_have_text("team-a")


def test_upload_and_audit(page: Any, stack: Stack, tmp_path: Path) -> None:
    sign_in(page, stack.key_a, "/ui/datasets")
    upload = messy_digits(tmp_path / "digits-messy.zip")
    page.set_input_files("#upload-file", str(upload))
    expect(page.locator("#upload-chosen")).to_contain_text("digits-messy.zip")
    expect(page.locator("#upload-task")).to_have_value("image_classification")
    page.fill("#upload-name", "Messy digits")
    page.click("#upload-submit")
    expect(page.locator("#upload-status")).to_be_visible()
    page.wait_for_url("**/ui/datasets/ds_*", timeout=60_000)
    expect(page.locator('[data-test="dataset-name"]')).to_have_text("Messy digits")
    # A dataset still processing refreshes itself until it is ready.
    expect(page.locator(".badge[data-status]").first).to_have_text("ready", timeout=60_000)

    bars = page.locator('[data-test="label-bars"] rect.bar')
    expect(bars).to_have_count(10)
    # 7 has six and the conflicting copy, 9 keeps two.
    expect(page.locator('[data-test="imbalance"]')).to_contain_text("3.5")
    warnings = page.locator('[data-test="warnings"]')
    expect(warnings).to_contain_text("conflicting_duplicates")
    expect(warnings.locator(".todo").first).to_be_visible()  # what to do about each
    skipped = page.locator('[data-test="skipped"]')
    expect(skipped).to_contain_text("3/broken.png")
    expect(skipped).to_contain_text("3/notes.docx")
    duplicates = page.locator('[data-test="duplicates"]')
    expect(duplicates).to_contain_text("7/looks-like-a-one.png")
    expect(duplicates).to_contain_text("1/copy-of-first.png")
    # The conflicting items are shown as pictures, served from the stored dataset.
    thumbs = duplicates.locator("img")
    expect(thumbs.first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-test=duplicates] img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.locator('[data-test="preview"] img').first).to_be_visible()
    shot(page, tmp_path, "02-dataset-audit")
    page.goto("/ui/datasets")
    expect(page.locator('[data-test="datasets-table"]')).to_contain_text("Messy digits")
    shot(page, tmp_path, "03-datasets-list")


def _ready_digits(stack: Stack, folder: Path) -> str:
    path = folder / "digits-train.zip"
    digits_zip(path, per_class=8)
    resp = stack.client.post(
        "/v1/datasets",
        headers=stack.headers(),
        files={"file": (path.name, path.read_bytes())},
        data={"task": "image_classification", "name": "digits for the job"},
    )
    assert resp.status_code == 201, resp.text
    dataset_id: str = resp.json()["id"]
    return dataset_id


def test_start_a_job_and_watch_it_train(page: Any, stack: Stack, tmp_path: Path) -> None:
    dataset_id = _ready_digits(stack, tmp_path)
    sign_in(page, stack.key_a, f"/ui/jobs/new?dataset_id={dataset_id}")
    expect(page.locator("#dataset_id")).to_have_value(dataset_id)
    # The dry run shows what `auto` resolves to before anything is started.
    expect(page.locator('[data-auto-for="batch_size"]')).to_contain_text("auto:")
    expect(page.locator('[data-test="estimate"]')).to_be_visible()
    page.select_option("#backbone", TINY_IMAGE_ID)
    page.fill("#model_name", "digits-watched")
    page.check(f"input[name=method][value={WATCHED_JOB['method']}]")
    page.click("summary")  # "More hyperparameters"
    for name in ("epochs", "batch_size", "image_size"):
        page.fill(f"#hp_{name}", WATCHED_JOB[name])
    page.fill("#hp_patience", "50")  # so that it never stops early
    # The plan follows the form: the typed values, and `auto` for the rest.
    expect(page.locator('[data-test="plan"]')).to_contain_text("at 32 px, up to 40 epochs")
    expect(page.locator('[data-auto-for="learning_rate"]')).to_contain_text("auto:")
    expect(page.locator('[data-hp="time_budget_seconds"]')).to_have_class("field unused")
    shot(page, tmp_path, "04-new-job")
    page.click('[data-test="start-job"]')
    page.wait_for_url("**/ui/jobs/job_*")

    chart = page.locator('[data-test="metric-chart"]')
    # The curves gain points while the job runs: some, then more, with the job still running.
    page.wait_for_function(
        "() => Number(document.querySelector('[data-test=metric-chart]').dataset.points) >= 3",
        timeout=120_000,
    )
    seen = int(chart.get_attribute("data-points") or 0)
    assert page.locator("#job").get_attribute("data-status") in ("queued", "running")
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-test=metric-chart]').dataset.points) > {seen}",
        timeout=60_000,
    )
    assert page.locator("#job").get_attribute("data-status") == "running"
    expect(page.locator('[data-test="loss-chart"] polyline.series.train')).to_have_count(1)
    expect(page.locator('[data-test="loss-chart"] polyline.series.val')).to_have_count(1)
    expect(page.locator('[data-test="phases"] li.done')).to_have_count(6)
    expect(page.locator('[data-test="events"]')).to_contain_text("epoch 2/")
    expect(page.locator("#p-eta")).not_to_have_text("—")
    shot(page, tmp_path, "05-job-training")

    page.click('[data-test="cancel"]')
    expect(page.locator("#job-status .badge")).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#live-state")).to_contain_text("finished: cancelled")
    expect(page.locator('[data-phase="registered"]')).to_contain_text("Cancelled")
    shot(page, tmp_path, "06-job-cancelled")
    page.goto("/ui/jobs?status=cancelled")
    expect(page.locator('[data-test="jobs-table"]')).to_contain_text("digits-watched")
    shot(page, tmp_path, "07-jobs-list")


def _digit_png(index: int = 0) -> bytes:
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = load_digits().images[index]
    image = Image.fromarray((pixels * 255 / 16).astype("uint8"), mode="L").resize((32, 32))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_version_inside_and_trying_it(
    page: Any, stack: Stack, image_model: Trained, tmp_path: Path
) -> None:
    url = f"/ui/models/{image_model.name}/versions/{image_model.version}"
    sign_in(page, stack.key_a, url)
    cells = page.locator('[data-test="confusion-matrix"] rect.cell')
    expect(cells).to_have_count(100)  # ten digits, rows true and columns predicted
    counts = [int(c) for c in cells.evaluate_all("cs => cs.map(c => c.dataset.count)")]
    version = stack.client.get(
        f"/v1/models/{image_model.name}/versions/{image_model.version}", headers=stack.headers()
    ).json()
    assert counts == [n for row in version["metrics"]["confusion_matrix"] for n in row]
    calibration = page.locator('[data-test="calibration"]')
    expect(calibration.locator("circle.dot.before")).not_to_have_count(0)
    expect(calibration.locator("circle.dot.after")).not_to_have_count(0)
    ece = version["metrics"]["calibration"]
    expect(calibration).to_contain_text(f"ECE {ece['ece_before']:.3f}")
    expect(calibration).to_contain_text(f"ECE {ece['ece_after']:.3f}")
    expect(page.locator('[data-test="manifest"]')).to_contain_text(
        version["manifest"]["dataset_sha256"]
    )

    # The per-label table sorts by F1.
    page.click('[data-test="sort-f1"]')
    f1 = page.locator('[data-test="per-label"] tbody td:nth-child(4)').evaluate_all(
        "cs => cs.map(c => Number(c.dataset.value))"
    )
    assert f1 == sorted(f1, reverse=True)
    page.click('[data-test="sort-f1"]')
    f1 = page.locator('[data-test="per-label"] tbody td:nth-child(4)').evaluate_all(
        "cs => cs.map(c => Number(c.dataset.value))"
    )
    assert f1 == sorted(f1)

    picture = tmp_path / "a-zero.png"
    picture.write_bytes(_digit_png(0))
    page.set_input_files("#try-file", str(picture))
    bars = page.locator('[data-test="predictions"] .pred')
    expect(bars).to_have_count(5)
    expect(page.locator("#try-preview")).to_be_visible()
    expect(page.locator('[data-test="timing"]')).to_contain_text("ms inference")
    shown = [float(t.rstrip("%")) for t in bars.locator(".p").all_inner_texts()]
    assert shown == sorted(shown, reverse=True) and 0 < shown[0] <= 100
    shot(page, tmp_path, "08-version-image")

    page.click('[data-test="promote"] button')
    expect(page.locator('[data-test="alias"]')).to_have_text("production")
    aliases = stack.client.get(f"/v1/models/{image_model.name}", headers=stack.headers()).json()
    assert aliases["aliases"]["production"] == image_model.version
    page.goto(f"/ui/models/{image_model.name}")
    expect(page.locator('[data-test="versions"]')).to_contain_text("production")
    shot(page, tmp_path, "09-model")

    # Its training job, finished: the stream replays what was tried and kept, marked on
    # the metric's chart.
    page.goto(f"/ui/jobs/{version['job_id']}")
    expect(page.locator("#live-state")).to_contain_text("finished: succeeded")
    kept = page.locator('[data-test="candidates"] [data-candidate="linear_probe"]')
    expect(kept).to_contain_text("kept")
    expect(page.locator('[data-test="metric-chart"] line.ref.kept')).to_have_count(1)
    expect(page.locator('[data-phase="registered"]')).to_have_class("done")
    expect(page.locator('[data-test="version-link"]')).to_be_visible()
    shot(page, tmp_path, "10-job-succeeded")


def test_trying_a_text_model(page: Any, stack: Stack, text_model: Trained, tmp_path: Path) -> None:
    sign_in(page, stack.key_a, f"/ui/models/{text_model.name}/versions/{text_model.version}")
    page.fill("#try-text", "I love this, what a wonderful day!")
    page.click("#try-run")
    bars = page.locator('[data-test="predictions"] .pred')
    expect(bars).to_have_count(3)  # top 5 of three labels
    labels = set(bars.evaluate_all("bs => bs.map(b => b.dataset.label)"))
    assert labels == {"negative", "neutral", "positive"}
    expect(page.locator('[data-test="timing"]')).to_contain_text("round trip")
    shot(page, tmp_path, "11-version-text")
    page.goto("/ui")
    expect(page.locator("h1")).to_have_text("Overview")
    shot(page, tmp_path, "12-overview")
