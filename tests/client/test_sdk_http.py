"""The SDK's transport against a small real HTTP server: retries exactly as the server says
(Retry-After, else backoff), creates that keep their Idempotency-Key across retries, uploads
that stream (a file with its length, a folder zipped on the fly and sent chunked), errors that
keep the problem's fields, an unreachable server named in the error; and the saved login."""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import json
import os
import socket
import stat
import time
import zipfile
from pathlib import Path

import pytest

import hone
from hone import config
from hone.events import parse_frames
from hone.uploads import folder_files, zip_chunks
from tests.client.sdk_support import DATASET, JOB, Reply, problem, scripted


def form_parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """{field name: (file name, bytes)} of a multipart/form-data body."""
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        parts[name] = (part.get_filename(), bytes(part.get_payload(decode=True)))
    return parts


@pytest.mark.parametrize("status", [503, 429])
def test_retries_once_after_what_retry_after_says(status: int) -> None:
    busy = Reply(status, problem(status, "busy", "come back"), {"Retry-After": "1"})
    with scripted(busy, Reply(200, {"object": "list", "data": [DATASET], "has_more": False})) as s:
        client = hone.Client(s.url, "k", max_retries=3)
        started = time.monotonic()
        datasets = list(client.datasets.list())
    assert [d.id for d in datasets] == ["ds_1"]
    assert len(s.received) == 2
    assert s.received[1].at - s.received[0].at >= 1.0
    assert time.monotonic() - started < 5


def test_backs_off_exponentially_without_retry_after() -> None:
    busy = Reply(503, problem(503, "database-unavailable", "down"))
    with scripted(busy, busy, Reply(200, DATASET)) as s:
        dataset = hone.Client(s.url, "k", max_retries=3).datasets.get("ds_1")
    assert dataset.status == "ready"
    gaps = [b.at - a.at for a, b in zip(s.received, s.received[1:], strict=False)]
    assert len(gaps) == 2 and gaps[0] >= 0.5 and gaps[1] >= 1.0


def test_gives_up_after_max_retries_with_the_problem() -> None:
    body = problem(503, "database_unavailable", "The database could not be reached.")
    with scripted(Reply(503, body, {"Retry-After": "0"})) as s:
        client = hone.Client(s.url, "k", max_retries=2)
        with pytest.raises(hone.ServiceUnavailable) as caught:
            client.jobs.get("job_1")
    assert len(s.received) == 3
    error = caught.value
    assert (error.status, error.code) == (503, "database_unavailable")
    assert error.detail == "The database could not be reached."
    assert error.headers["retry-after"] == "0"
    assert isinstance(error, hone.APIError) and isinstance(error, hone.HoneError)


def test_a_retried_create_keeps_its_idempotency_key() -> None:
    busy = Reply(503, problem(503, "broker_unavailable", "queue down"), {"Retry-After": "0"})
    with scripted(busy, busy, Reply(201, JOB)) as s:
        client = hone.Client(s.url, "k", max_retries=3)
        job = client.jobs.create(dataset_id="ds_1", backbone="tiny_image", model_name="m")
        explicit = client.jobs.create(
            dataset_id="ds_1", backbone="tiny_image", model_name="m", idempotency_key="mine-1"
        )
    assert job.id == explicit.id == "job_1"
    keys = [r.headers.get("Idempotency-Key") for r in s.received]
    assert len(keys) == 4 and keys[0] and keys[0] == keys[1] == keys[2]
    assert keys[3] == "mine-1"
    assert all(json.loads(r.body)["model_name"] == "m" for r in s.received)


def test_a_retried_upload_sends_the_whole_file_again_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "tweets.csv"
    path.write_bytes(b"text,label\n" + b"great service,pos\n" * 20_000)  # ~360 KB: many chunks
    seen: list[tuple[int, int | None]] = []
    busy = Reply(503, problem(503, "storage_unavailable", "store down"), {"Retry-After": "0"})
    with scripted(busy, Reply(201, DATASET)) as s:
        client = hone.Client(s.url, "k", max_retries=2)
        client.datasets.upload(
            path, task="text_classification", name="tw", progress=lambda *a: seen.append(a)
        )
    first, second = s.received
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    for attempt in (first, second):
        assert int(attempt.headers["Content-Length"]) == len(attempt.body)  # a known length
        parts = form_parts(attempt.headers["Content-Type"], attempt.body)
        assert parts["file"] == ("tweets.csv", path.read_bytes())
        assert parts["task"][1] == b"text_classification" and parts["name"][1] == b"tw"
    size = path.stat().st_size
    assert seen[-1] == (size, size) and len(seen) > 4  # chunk by chunk, twice
    assert all(total == size for _, total in seen)


def test_a_folder_is_zipped_on_the_fly_and_sent_chunked(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for i in range(3):
            (folder / label / f"{i}.png").write_bytes(os.urandom(50_000))
    (folder / ".DS_Store").write_bytes(b"junk")
    seen: list[tuple[int, int | None]] = []
    with scripted(Reply(201, DATASET)) as s:
        client = hone.Client(s.url, "k")
        client.datasets.upload(
            folder, task="image_classification", progress=lambda *a: seen.append(a)
        )
    (request,) = s.received
    assert request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in request.headers
    parts = form_parts(request.headers["Content-Type"], request.body)
    filename, data = parts["file"]
    assert filename == "photos.zip" and parts["name"][1] == b"photos"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [
            f"{d}/{i}.png" for d in ("cat", "dog") for i in range(3)
        ]
        assert archive.read("dog/2.png") == (folder / "dog" / "2.png").read_bytes()
    assert seen[-1] == (len(data), None) and len(seen) > 3


def test_a_folder_zip_is_never_whole_in_memory(tmp_path: Path) -> None:
    """The zip comes out as it is written: chunks stay small however big the files are."""
    big = tmp_path / "data" / "a" / "big.png"
    big.parent.mkdir(parents=True)
    big.write_bytes(os.urandom(4 * 1024 * 1024))
    sizes = [len(chunk) for chunk in zip_chunks(folder_files(tmp_path / "data"))]
    assert sum(sizes) > 4 * 1024 * 1024 and len(sizes) > 50
    assert max(sizes) <= 64 * 1024 + 1024


def test_a_problem_keeps_its_fields() -> None:
    errors = [{"field": "task", "message": "expected one of image_classification, ..."}]
    body = problem(422, "invalid_task", "`task` must be one of ...", errors=errors)
    with scripted(Reply(422, body)) as s, pytest.raises(hone.UnprocessableEntity) as caught:
        hone.Client(s.url, "k").datasets.upload(b"text,label\nx,y\n", task="nope")
    error = caught.value
    assert error.status == 422 and error.code == "invalid_task"
    assert error.type == "https://hone.dev/problems/invalid_task"
    assert error.errors == errors and error.body == body
    assert "`task` must be one of" in str(error)
    assert len(s.received) == 1  # a 422 is never retried


def test_an_unreachable_server_is_named_quickly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"  # bound then closed: nothing listens there
    started = time.monotonic()
    with pytest.raises(hone.APIConnectionError) as caught:
        hone.Client(url, "k", max_retries=1).backbones.list()
    assert time.monotonic() - started < 3
    assert url in str(caught.value) and caught.value.url == url


def test_sse_frames_are_parsed_as_the_format_says() -> None:
    lines = [
        ": stream of job events", "",
        "id: 7", "event: message", 'data: {"a":', "data: 1}", "",
        ": keep-alive", "",
        "retry: 5000", "event: unavailable", "data:{}", "",
        "event: end", 'data: {"status": "succeeded"}', "",
    ]  # fmt: skip
    frames = list(parse_frames(lines))
    assert [(f.event, f.id) for f in frames] == [
        ("message", "7"), ("unavailable", None), ("end", None)
    ]  # fmt: skip
    assert frames[0].data == '{"a":\n1}' and frames[1].retry_ms == 5000 and frames[1].data == "{}"


def test_login_is_saved_private_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "conf" / "hone.json"
    monkeypatch.setenv("HONE_CONFIG_FILE", str(target))
    monkeypatch.delenv("HONE_API_URL", raising=False)
    monkeypatch.delenv("HONE_API_KEY", raising=False)
    assert config.load_saved() == config.SavedLogin()
    assert config.resolve(None, None) == ("http://127.0.0.1:8000", None)

    assert config.save("http://hone.example:8000/", "hone_sk_1") == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert config.load_saved() == config.SavedLogin("http://hone.example:8000", "hone_sk_1")
    config.save("http://hone.example:8000", "hone_sk_2")  # replaced whole
    assert json.loads(target.read_text())["key"] == "hone_sk_2"
    assert [p.name for p in target.parent.iterdir()] == ["hone.json"]  # no temporary left

    client = hone.Client()
    assert (client.base_url, client.api_key) == ("http://hone.example:8000", "hone_sk_2")
    monkeypatch.setenv("HONE_API_KEY", "from-env")
    assert hone.Client().api_key == "from-env"
    assert hone.Client(api_key="arg").api_key == "arg"
    monkeypatch.delenv("HONE_API_KEY")
    # The saved key belongs to the saved server: it is never sent to another one.
    monkeypatch.setenv("HONE_API_URL", "http://elsewhere:9000")
    assert (hone.Client().base_url, hone.Client().api_key) == ("http://elsewhere:9000", None)


def test_the_default_config_path_follows_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HONE_CONFIG_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config.config_path() == tmp_path / "hone" / "config.json"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config.config_path() == tmp_path / "home" / ".config" / "hone" / "config.json"


def sse(*frames: str) -> Reply:
    return Reply(200, raw="".join(frames).encode(), content_type="text/event-stream")


def event_frame(event_id: int) -> str:
    data = {
        "id": event_id, "object": "fine_tuning.job.event", "created_at": "2026-01-01T00:00:00Z",
        "level": "info", "type": "message", "message": f"event {event_id}", "data": None,
    }  # fmt: skip
    return f"id: {event_id}\nevent: message\ndata: {json.dumps(data)}\n\n"


def test_an_unavailable_event_is_a_drop_resumed_after_its_retry() -> None:
    """The API ends a stream with `unavailable` (and `retry:`) when its database goes away:
    the iterator comes back after that delay, asking for what follows the last event."""
    first = sse(": hello\n\n", event_frame(1), event_frame(2), "retry: 700\nevent: unavailable\n"
                'data: {"status": 503, "code": "database_unavailable"}\n\n')  # fmt: skip
    cut_short = sse(event_frame(3))  # ends without `end`: a dropped connection
    rest = sse(": keep-alive\n\n", event_frame(4), 'event: end\ndata: {"status": "succeeded"}\n\n')
    with scripted(Reply(200, JOB), first, cut_short, rest) as s:
        events = list(hone.Client(s.url, "k").jobs.stream("job_1"))
    assert [e.id for e in events] == [1, 2, 3, 4]
    streams = s.received[1:]
    assert [r.headers.get("Last-Event-ID") for r in streams] == [None, "2", "3"]
    assert all(r.headers["Accept"] == "text/event-stream" for r in streams)
    assert streams[1].at - streams[0].at >= 0.7  # the server's retry: 700 (ms)


def artifact_zip(files: dict[str, bytes], sums: dict[str, str] | None = None) -> bytes:
    sums = sums or {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sums.items()))
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["archive", "file"])
def test_a_download_that_does_not_match_its_digests_is_refused(damage: str, tmp_path: Path) -> None:
    files = {"model.safetensors": b"weights" * 100, "config.json": b"{}"}
    data = artifact_zip(files)
    digest = hashlib.sha256(data).hexdigest()
    if damage == "archive":
        digest = "0" * 64
    else:  # a file whose listed digest is not its own, in an archive that is what was sent
        data = artifact_zip(files, {"model.safetensors": "1" * 64, "config.json": "2" * 64})
        digest = hashlib.sha256(data).hexdigest()
    reply = Reply(200, raw=data, content_type="application/zip",
                  headers={"X-Hone-Artifact-SHA256": digest})  # fmt: skip
    with scripted(reply) as s, pytest.raises(hone.IntegrityError):
        hone.Client(s.url, "k").models.download("m", 1, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # nothing half-written left


def test_a_download_lands_checked_with_progress(tmp_path: Path) -> None:
    files = {"model.safetensors": os.urandom(300_000), "tokenizer/vocab.txt": b"a\nb\n"}
    data = artifact_zip(files)
    reply = Reply(200, raw=data, content_type="application/zip",
                  headers={"X-Hone-Artifact-SHA256": hashlib.sha256(data).hexdigest()})  # fmt: skip
    seen: list[tuple[int, int | None]] = []
    with scripted(reply) as s:
        out = hone.Client(s.url, "k").models.download(
            "m", 1, tmp_path / "out", progress=lambda *a: seen.append(a)
        )
    assert s.received[0].path == "/v1/models/m/versions/1/artifact"
    assert out == tmp_path / "out"
    for name, content in files.items():
        assert (out / name).read_bytes() == content
    assert seen[-1] == (len(data), len(data))
