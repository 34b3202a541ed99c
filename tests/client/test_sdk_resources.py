"""Every SDK resource end to end against a real `hone api` and worker: a folder of photos
uploaded (zipped on the fly), datasets listed page by page, a job created twice under one
idempotency key and waited for, the registry and aliases, a version downloaded and checked
against the files the server holds, predictions from image files and from texts; another
project's key gets NotFound, a bad key AuthenticationError, a bad request its problem."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import hone
from hone import pagination
from ml.backbones.testing import TINY_IMAGE_ID, TINY_TEXT_ID
from tests.app.jobs.flows import QUICK_TEXT_JOB
from tests.client.conftest import Live, Trained
from tests.client.sdk_support import digits_folder
from tests.factories.uploads import image_bytes, tweets_csv


@pytest.fixture
def client(live: Live) -> Iterator[hone.Client]:
    with hone.Client(live.url, live.key, max_retries=2) as client:
        yield client


@dataclass(frozen=True)
class Photos:
    folder: Path
    counts: dict[str, int]
    dataset: hone.Dataset
    progress: list[tuple[int, int | None]]


@pytest.fixture(scope="module")
def photos(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Photos:
    """A folder of photos, one sub-folder per label, uploaded as a person would."""
    folder = tmp_path_factory.mktemp("album") / "photos"
    counts = digits_folder(folder, per_class=3, classes=4)
    seen: list[tuple[int, int | None]] = []
    with hone.Client(live.url, live.key) as client:
        dataset = client.datasets.upload(
            folder,
            task="image_classification",
            wait=True,
            wait_timeout=120,
            progress=lambda sent, total: seen.append((sent, total)),
        )
    return Photos(folder, counts, dataset, seen)


def test_a_folder_of_photos_is_uploaded_and_audited(photos: Photos, client: hone.Client) -> None:
    dataset = photos.dataset
    assert dataset.status == "ready" and dataset.name == "photos"
    assert dataset.task == "image_classification"
    assert dataset.label_counts == photos.counts and dataset.num_examples == 12
    assert sorted(dataset.labels) == sorted(photos.counts)
    assert dataset.report is not None
    sent, total = photos.progress[-1]
    assert total is None and sent > sum(p.stat().st_size for p in photos.folder.rglob("*.png"))
    assert client.datasets.get(dataset.id) == dataset


def test_datasets_list_page_by_page_and_delete(
    client: hone.Client, photos: Photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tweets.csv"
    counts = tweets_csv(path, 30)
    from_bytes = client.datasets.upload(path.read_bytes(), task="text_classification", wait=True)
    assert from_bytes.label_counts == counts and from_bytes.name == "upload.csv"
    monkeypatch.setattr(pagination, "MAX_PAGE", 1)  # one dataset a page: paging for real
    listed = [d.id for d in client.datasets.list()]
    assert listed[0] == from_bytes.id and photos.dataset.id in listed
    assert len(listed) == len(set(listed))
    assert [d.id for d in client.datasets.list(limit=1)] == [from_bytes.id]

    deleted = client.datasets.delete(from_bytes.id)
    assert deleted["id"] == from_bytes.id and deleted["deleted"] is True
    with pytest.raises(hone.NotFound):
        client.datasets.get(from_bytes.id)


def test_a_bad_request_keeps_the_problem_s_fields(client: hone.Client) -> None:
    with pytest.raises(hone.UnprocessableEntity) as caught:
        client.datasets.upload(b"text,label\nhello,pos\n", task="sentiment")
    error = caught.value
    assert (error.status, error.code) == (422, "invalid_task")
    assert error.type and error.type.startswith("https://") and error.title
    assert "task" in (error.detail or "")
    assert error.errors and error.errors[0]["field"] == "task"
    assert error.headers["content-type"].startswith("application/problem+json")


def test_backbones_are_listed(client: hone.Client) -> None:
    backbones = {b.id: b for b in client.backbones.list()}
    assert backbones[TINY_IMAGE_ID].modality == "image" and backbones[TINY_IMAGE_ID].available
    assert backbones[TINY_TEXT_ID].max_length


def test_a_plan_creates_nothing(client: hone.Client, photos: Photos) -> None:
    plan = client.jobs.plan(
        dataset_id=photos.dataset.id, backbone=TINY_IMAGE_ID, model_name="sdk-planned"
    )
    assert plan.dry_run and plan.num_examples == 12
    assert plan.plan["estimated_seconds"] > 0 and plan.plan["candidates"]
    assert list(client.jobs.list(model_name="sdk-planned")) == []


def test_a_job_created_twice_under_one_key_runs_once_and_is_waited_for(
    client: hone.Client, tmp_path: Path
) -> None:
    path = tmp_path / "tweets.csv"
    tweets_csv(path, 40)
    dataset = client.datasets.upload(path, task="text_classification", wait=True)
    args = {"dataset_id": dataset.id, "model_name": "sdk-once", **QUICK_TEXT_JOB}
    job = client.jobs.create(**args, idempotency_key="sdk-test-once")
    again = client.jobs.create(**args, idempotency_key="sdk-test-once")
    assert again.id == job.id
    assert [j.id for j in client.jobs.list(model_name="sdk-once")] == [job.id]

    seen: list[hone.Event] = []
    done = client.jobs.wait(job.id, timeout=240, on_event=seen.append)
    assert done.status == "succeeded" and done.done and done.model_version is not None
    logged = [e.id for e in client.jobs.events(job.id)]  # newest first
    assert [e.id for e in seen] == sorted(logged) == logged[::-1]
    assert [j.status for j in client.jobs.list(status="succeeded", limit=1)] == ["succeeded"]

    version = client.models.version("sdk-once", "latest")
    assert version.version == done.model_version.version and version.job_id == job.id
    deleted = client.models.delete_version("sdk-once", version.version)
    assert deleted["deleted"] is True
    with pytest.raises(hone.NotFound):
        client.models.version("sdk-once", version.version)
    with pytest.raises(hone.Conflict):
        client.jobs.cancel(job.id)  # it has finished


def test_waiting_on_a_finished_job_replays_its_events(
    client: hone.Client, image_model: Trained
) -> None:
    job_id = client.models.version(image_model.name, image_model.version).job_id
    assert job_id is not None
    seen: list[int] = []
    job = client.jobs.wait(job_id, on_event=lambda e: seen.append(e.id))
    assert job.status == "succeeded"
    assert seen == sorted(e.id for e in client.jobs.events(job_id)) and len(seen) > 2
    middle = seen[len(seen) // 2]
    assert [e.id for e in client.jobs.stream(job_id, after=middle)] == [
        i for i in seen if i > middle
    ]


def test_the_registry_and_aliases(client: hone.Client, image_model: Trained) -> None:
    name, number = image_model.name, image_model.version
    assert name in {m.name for m in client.models.list()}
    detail = client.models.get(name)
    assert detail.latest_version == number and number in {v.version for v in detail.versions}
    version = client.models.version(name, "latest")
    assert version.version == number and version.status == "ready"
    assert version.metrics["confusion_matrix"] and set(version.metrics["per_label"]) == set(
        version.labels
    )
    assert client.models.set_alias(name, "sdk-staging", number)["version"] == number
    assert client.models.get(name).aliases["sdk-staging"] == number
    assert client.models.version(name, "sdk-staging").version == number
    assert client.models.delete_alias(name, "sdk-staging")["deleted"] is True
    with pytest.raises(hone.NotFound):
        client.models.version(name, "sdk-staging")
    with pytest.raises(hone.NotFound):
        client.models.get("no-such-model")


def test_predict_from_image_files_and_bytes(
    client: hone.Client, image_model: Trained, tmp_path: Path
) -> None:
    digits_folder(tmp_path, per_class=1, classes=2)
    paths = sorted(tmp_path.rglob("*.png"))
    answer = client.predict(image_model.name, files=[paths[0], paths[1].read_bytes()], top_k=3)
    assert answer.model.name == image_model.name and answer.model.version == image_model.version
    labels = set(client.models.version(image_model.name, image_model.version).labels)
    assert len(answer.predictions) == 2
    for prediction in answer.predictions:
        assert prediction.label in labels and prediction.scores is not None
        assert len(prediction.scores) == 3 and prediction.scores[0].label == prediction.label
        assert 0 <= (prediction.score or 0) <= 1
    pinned = client.predict(image_model.name, files=[paths[0]], version=image_model.version)
    assert pinned.predictions[0].label == answer.predictions[0].label


def test_predict_from_texts(client: hone.Client, text_model: Trained) -> None:
    answer = client.predict(text_model.name, texts=["what a lovely day", "this is awful"])
    labels = set(client.models.version(text_model.name, "latest").labels)
    assert [p.label in labels for p in answer.predictions] == [True, True]
    with pytest.raises(hone.UnprocessableEntity) as caught:
        client.predict(text_model.name, files=[image_bytes()])  # an image to a text model
    assert caught.value.code == "wrong_input_kind"


def test_a_download_holds_the_version_s_files(
    client: hone.Client, image_model: Trained, live: Live, tmp_path: Path
) -> None:
    seen: list[tuple[int, int | None]] = []
    folder = client.models.download(
        image_model.name, "latest", tmp_path / "out", progress=lambda *a: seen.append(a)
    )
    served = image_model.artifact_dir(live.stack)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "model.safetensors" in files and "SHA256SUMS" in files
    for name in set(files) - {"SHA256SUMS"}:
        assert (folder / name).read_bytes() == (served / name).read_bytes(), name
    # The digests stay beside the files, so they can be checked again later.
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True)
    assert checked.returncode == 0, checked.stdout
    assert seen and seen[-1][0] == seen[-1][1]


def test_another_project_s_key_finds_nothing(
    live: Live, photos: Photos, image_model: Trained
) -> None:
    with hone.Client(live.url, live.other_key) as other:
        with pytest.raises(hone.NotFound):
            other.datasets.get(photos.dataset.id)
        with pytest.raises(hone.NotFound):
            other.models.get(image_model.name)
        with pytest.raises(hone.NotFound):
            other.predict(image_model.name, files=[b"x"])
        assert photos.dataset.id not in {d.id for d in other.datasets.list()}


def test_a_bad_key_is_refused(live: Live) -> None:
    client = hone.Client(live.url, "hone_sk_not-a-real-key")
    with client, pytest.raises(hone.AuthenticationError) as caught:
        client.datasets.list()
    assert caught.value.status == 401
