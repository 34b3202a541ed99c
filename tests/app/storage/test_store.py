"""The storage interface (Store, StoreCache, the Storage facade), every behaviour checked on
a local directory and on a real S3-compatible server (moto, over HTTP)."""

from __future__ import annotations

import gc
import json
import multiprocessing
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from app.storage import store as store_module
from app.storage.cache import StoreCache
from app.storage.errors import StorageUnavailable, StoreMissing
from app.storage.places import Storage
from app.storage.store import PUBLISHED, Store
from tests.support.api_process import free_port
from tests.support.s3_server import CREDENTIALS, S3Server, running_s3_server

BACKENDS = ["local", "s3"]
# fetch_dir that fails part-way leaves fsspec's not-yet-started transfers unawaited.
pytestmark = pytest.mark.filterwarnings(
    "ignore:coroutine 'S3FileSystem._get_file' was never awaited:RuntimeWarning"
)
# An unreachable store must answer within this, never hang (the Store's timeouts and retries).
UNREACHABLE_BOUND_S = 20


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    if request.param == "local":  # not under tmp_path, which the tests keep for their own files
        return Store(f"file://{tmp_path_factory.mktemp('store')}")
    url: str = request.getfixturevalue("s3_store_url")
    server: S3Server = request.getfixturevalue("s3_server")
    return Store(url, endpoint_url=server.endpoint_url)


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3_server(tmp_path_factory.mktemp("s3-faults") / "moto.log") as server:
        yield server


@pytest.fixture
def own_s3(fault_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A server apart from the session's, for the tests that pause or kill it."""
    for name, value in fault_server.env().items():
        monkeypatch.setenv(name, value)
    yield fault_server
    if fault_server.proc is None:  # a test that killed it and failed before starting it again
        fault_server.start()
    fault_server.resume()


def make_tree(root: Path) -> dict[str, bytes]:
    """A nested directory with an empty file, binary bytes and a dotfile; returns its files."""
    files = {
        "config.json": b'{"labels": ["cat", "dog"]}',
        "weights/model.safetensors": bytes(range(256)) * 64,
        "weights/empty.bin": b"",
        "shards/a/b/c/part-0001.arrow": b"x" * 10_000,
        ".hidden/notes": b"dotfiles are files too",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def count_calls(store: Store, name: str, before: Callable[[], object] | None = None) -> list[str]:
    """Wrap one of `store`'s methods to record each call (and run `before` first)."""
    calls: list[str] = []
    real = getattr(store, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(str(args[0]))
        if before is not None:
            before()
        return real(*args, **kwargs)

    setattr(store, name, wrapper)
    return calls


# ---- objects ---------------------------------------------------------------------------


def test_bytes_round_trip_and_overwrite(store: Store) -> None:
    store.put_bytes("a/b/c.bin", b"\x00first")
    assert store.get_bytes("a/b/c.bin") == b"\x00first"
    assert store.exists("a/b/c.bin")
    store.put_bytes("a/b/c.bin", b"second")
    assert store.get_bytes("a/b/c.bin") == b"second"
    with store.open("a/b/c.bin") as handle:
        assert handle.read() == b"second"


def test_file_round_trip(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "upload.zip"
    source.write_bytes(b"PK" + bytes(range(256)) * 1000)
    store.put_file(source, "uploads/ds1")
    target = tmp_path / "deep" / "down" / "copy.zip"
    store.get_file("uploads/ds1", target)
    assert target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["copy.zip"]  # no temporary left
    assert store.list("uploads") == ["uploads/ds1"]


def test_missing_keys_raise_store_missing(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "never.bin"
    with pytest.raises(StoreMissing):
        store.get_bytes("no/such/key")
    with pytest.raises(StoreMissing):
        store.get_file("no/such/key", target)
    with pytest.raises(StoreMissing):
        store.open("no/such/key")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # nor a temporary beside it
    assert not store.exists("no/such/key")
    assert isinstance(StoreMissing("x"), FileNotFoundError)


# ---- names -----------------------------------------------------------------------------


def test_uri_and_key_of_round_trip(store: Store) -> None:
    key = "models/p1/resnet/3"
    uri = store.uri(key)
    assert uri.startswith("file:///" if store.local else "s3://")
    assert store.key_of(uri) == key
    store.put_bytes(key, b"v")
    assert Store(store.url, endpoint_url=_endpoint(store)).key_of(uri) == key
    if store.local:
        assert store.local_path(key).read_bytes() == b"v"
    else:
        with pytest.raises(ValueError):
            store.local_path(key)


@pytest.mark.parametrize(
    "foreign",
    [
        "s3://another-bucket/models/p1/resnet/3",
        "file:///elsewhere/models/p1/resnet/3",
        "gs://bucket/models/x",
        "models/p1/resnet/3",
    ],
)
def test_key_of_refuses_foreign_uris(store: Store, foreign: str) -> None:
    with pytest.raises(ValueError):
        store.key_of(foreign)
    sibling = f"{store.uri('x').removesuffix('/x')}-sibling/models/x"  # same name, longer
    with pytest.raises(ValueError):
        store.key_of(sibling)
    with pytest.raises(ValueError):
        store.key_of(store.uri("models") + "/../../etc/passwd")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../outside", "a/../../b", "a/..", ".."])
def test_keys_that_leave_the_store_are_refused(store: Store, key: str, tmp_path: Path) -> None:
    for call in (
        lambda: store.put_bytes(key, b"x"),
        lambda: store.get_bytes(key),
        lambda: store.get_file(key, tmp_path / "out"),
        lambda: store.exists(key),
        lambda: store.list(key),
        lambda: store.delete(key),
        lambda: store.uri(key),
        lambda: StoreCache(store, tmp_path / "cache").directory(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert not (tmp_path / "outside").exists()


# ---- listing and deleting --------------------------------------------------------------


def test_list_under_a_prefix(store: Store) -> None:
    for key in ("jobs/1/a", "jobs/1/sub/b", "jobs/10/c", "jobs/1/.published", "other/d"):
        store.put_bytes(key, b"x")
    # A local write that never finished (the process died between write and rename).
    store.put_bytes(f"jobs/1/e.tmp-{uuid.uuid4().hex}", b"partial")
    assert store.list("jobs/1") == ["jobs/1/.published", "jobs/1/a", "jobs/1/sub/b"]
    assert store.list("jobs/1/") == store.list("jobs/1")
    assert store.list("jobs") == [*store.list("jobs/1"), "jobs/10/c"]
    assert store.list("nothing/here") == []
    assert store.list("jobs/1/a") == []  # a key is not a prefix of itself


def test_delete_a_prefix_a_key_and_nothing(store: Store) -> None:
    for key in ("jobs/1/a", "jobs/1/sub/b", "jobs/10/c", "uploads/x", "uploads/x2"):
        store.put_bytes(key, b"x")
    store.delete("jobs/1")
    assert store.list("jobs") == ["jobs/10/c"]
    store.delete("uploads/x")
    assert store.list("uploads") == ["uploads/x2"]
    store.delete("never/written")
    store.delete("jobs/1")  # again: nothing there is not an error
    assert store.list("jobs") == ["jobs/10/c"]


def test_a_store_under_a_prefix_stays_inside_it(store: Store) -> None:
    outer = store
    inner = Store(f"{outer.url}/tenant/a", endpoint_url=_endpoint(outer))
    outer.put_bytes("tenant/ab/k", b"neighbour")
    inner.put_bytes("k", b"mine")
    assert inner.list("k") == [] and inner.exists("k")
    assert outer.get_bytes("tenant/a/k") == b"mine"
    assert inner.key_of(inner.uri("k")) == "k"
    with pytest.raises(ValueError):
        inner.key_of(outer.uri("tenant/ab/k"))
    inner.delete("k")
    assert outer.list("tenant") == ["tenant/ab/k"]


# ---- published directories -------------------------------------------------------------


def test_publish_then_fetch_gives_identical_bytes(store: Store, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "built")
    listing = store.publish_dir(tmp_path / "built", "datasets/abc")
    assert listing == {rel: len(data) for rel, data in files.items()}
    assert store.published("datasets/abc") == listing
    assert store.list("datasets/abc") == sorted(
        [f"datasets/abc/{rel}" for rel in files] + [f"datasets/abc/{PUBLISHED}"]
    )
    store.fetch_dir("datasets/abc", tmp_path / "fetched")
    fetched = tree(tmp_path / "fetched")
    assert json.loads(fetched.pop(PUBLISHED)) == {"files": listing}
    assert fetched == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "fetched"]  # no temporary


def test_an_empty_directory_publishes(store: Store, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert store.publish_dir(tmp_path / "empty", "models/p/n/1") == {}
    store.fetch_dir("models/p/n/1", tmp_path / "out")
    assert tree(tmp_path / "out") == {PUBLISHED: b'{"files": {}}'}


def test_files_without_their_listing_are_not_visible(store: Store, tmp_path: Path) -> None:
    """A publish that died after the files but before `.published`: nobody may read it."""
    files = make_tree(tmp_path / "built")
    for rel in files:
        store.put_file(tmp_path / "built" / rel, f"datasets/half/{rel}")
    assert store.published("datasets/half") is None
    with pytest.raises(StoreMissing):
        store.fetch_dir("datasets/half", tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists()
    with pytest.raises(StoreMissing):
        StoreCache(store, tmp_path / "cache").directory("datasets/half")
    with pytest.raises(StoreMissing):
        Storage(store, tmp_path / "cache2").dataset_dir("half")


def test_a_failed_publish_is_retried(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_tree(tmp_path / "built")

    def unreachable(key: str, data: bytes) -> None:
        raise StorageUnavailable("the store went away before the listing")

    with monkeypatch.context() as patch:
        patch.setattr(store, "put_bytes", unreachable)
        with pytest.raises(StorageUnavailable):
            store.publish_dir(tmp_path / "built", "models/p/n/1")
    assert store.published("models/p/n/1") is None
    (tmp_path / "built" / "config.json").write_bytes(b'{"labels": ["retried"]}')
    store.publish_dir(tmp_path / "built", "models/p/n/1")
    store.fetch_dir("models/p/n/1", tmp_path / "out")
    fetched = tree(tmp_path / "out")
    fetched.pop(PUBLISHED)
    assert fetched == {**files, "config.json": b'{"labels": ["retried"]}'}


def test_fetch_replaces_an_existing_target(store: Store, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "built")
    store.publish_dir(tmp_path / "built", "datasets/abc")
    target = tmp_path / "target"
    (target / "weights").mkdir(parents=True)
    (target / "stale.txt").write_text("from an older copy")
    (target / "weights" / "model.safetensors").write_bytes(b"corrupt")
    store.fetch_dir("datasets/abc", target)
    fetched = tree(target)
    fetched.pop(PUBLISHED)
    assert fetched == files
    # A plain file where the directory should be is replaced too.
    (tmp_path / "a-file").write_text("not a directory")
    store.fetch_dir("datasets/abc", tmp_path / "a-file")
    assert (tmp_path / "a-file" / "config.json").read_bytes() == files["config.json"]


# ---- the local cache of published directories ------------------------------------------


def test_cache_downloads_once_and_again_after_it_is_deleted(store: Store, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "built")
    store.publish_dir(tmp_path / "built", "models/p/n/1")
    downloads = count_calls(store, "fetch_dir")
    cache = StoreCache(store, tmp_path / "cache")
    first = cache.directory("models/p/n/1")
    assert cache.directory("models/p/n/1") == first
    if store.local:  # the published directory is used in place: it is on this disk already
        assert first == store.local_path("models/p/n/1") and downloads == []
        return
    assert downloads == ["models/p/n/1"]
    got = tree(first)
    got.pop(PUBLISHED)
    assert got == files
    (first / "weights" / "model.safetensors").unlink()  # a tmp cleaner took one file
    assert cache.directory("models/p/n/1") == first
    assert len(downloads) == 2
    assert (first / "weights" / "model.safetensors").read_bytes() == files[
        "weights/model.safetensors"
    ]
    shutil.rmtree(tmp_path / "cache")  # the whole cache went
    assert tree(cache.directory("models/p/n/1")) == tree(first)
    assert len(downloads) == 3


def test_concurrent_first_uses_wait_on_one_download(store: Store, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "built")
    store.publish_dir(tmp_path / "built", "datasets/abc")
    cache = StoreCache(store, tmp_path / "cache")
    threads = 8
    entered: list[int] = []
    all_in = threading.Event()
    # The download starts only once every thread is inside directory(): each of them then
    # finds the directory incomplete and must wait for that one download, not start its own.
    downloads = count_calls(store, "fetch_dir", before=lambda: all_in.wait(timeout=10))

    def use(_: int) -> Path:
        entered.append(1)
        if len(entered) == threads:
            all_in.set()
        return cache.directory("datasets/abc")

    with ThreadPoolExecutor(threads) as pool:
        paths = set(pool.map(use, range(threads)))
    assert len(paths) == 1
    assert len(downloads) == (0 if store.local else 1)
    got = tree(paths.pop())
    got.pop(PUBLISHED)
    assert got == files


def _use_in_child(store: Store, root: Path, entered: Any, count_file: Path, total: int) -> None:
    def before() -> None:
        with count_file.open("a") as out:
            out.write("download\n")
        deadline = time.monotonic() + 10
        while entered.value < total and time.monotonic() < deadline:
            time.sleep(0.01)

    count_calls(store, "fetch_dir", before=before)
    with entered.get_lock():
        entered.value += 1
    StoreCache(store, root).directory("datasets/abc")


def test_processes_sharing_a_cache_download_once(store: Store, tmp_path: Path) -> None:
    make_tree(tmp_path / "built")
    store.publish_dir(tmp_path / "built", "datasets/abc")
    context = multiprocessing.get_context("fork")
    entered = context.Value("i", 0)
    count_file, total = tmp_path / "downloads.txt", 3
    children = [
        context.Process(
            target=_use_in_child, args=(store, tmp_path / "cache", entered, count_file, total)
        )
        for _ in range(total)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0
    downloads = count_file.read_text().splitlines() if count_file.exists() else []
    assert len(downloads) == (0 if store.local else 1)


def test_a_forked_child_gets_its_own_filesystem(store: Store) -> None:
    store.put_bytes("from/parent", b"p")
    parent_fs = store.fs
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        own = store.fs is not parent_fs
        store.put_bytes("from/child", store.get_bytes("from/parent") + b"c")
        results.put(own)

    process = context.Process(target=child)
    process.start()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert results.get(timeout=5) is True
    assert store.get_bytes("from/child") == b"pc"
    assert store.fs is parent_fs  # the parent keeps its own


# ---- the Storage facade: job checkpoints -----------------------------------------------


def test_checkpoints_keep_only_the_latest(store: Store, tmp_path: Path) -> None:
    storage = Storage(store, tmp_path / "cache")
    for epoch in range(3):
        local = tmp_path / f"ckpt-{epoch}"
        (local / "optim").mkdir(parents=True)
        (local / "state.json").write_text(json.dumps({"epoch": epoch}))
        (local / "optim" / "adam.bin").write_bytes(bytes([epoch]) * 100)
        storage.save_checkpoint("job1", local)
    assert json.loads(store.get_bytes("jobs/job1/checkpoint.json")) == {"number": 2}
    assert store.published("jobs/job1/checkpoints/2") is not None
    assert [k for k in store.list("jobs/job1") if "/checkpoints/" in k] == [
        "jobs/job1/checkpoints/2/.published",
        "jobs/job1/checkpoints/2/optim/adam.bin",
        "jobs/job1/checkpoints/2/state.json",
    ]
    restored = tmp_path / "resume"
    (restored / "junk").mkdir(parents=True)
    assert storage.restore_checkpoint("job1", restored)
    assert json.loads((restored / "state.json").read_text()) == {"epoch": 2}
    assert (restored / "optim" / "adam.bin").read_bytes() == b"\x02" * 100
    assert not (restored / "junk").exists()
    storage.drop_job("job1")
    assert store.list("jobs/job1") == []


def test_restore_without_a_checkpoint_removes_the_stale_copy(store: Store, tmp_path: Path) -> None:
    storage = Storage(store, tmp_path / "cache")
    stale = tmp_path / "resume"
    stale.mkdir()
    (stale / "state.json").write_text('{"epoch": 7}')  # an earlier attempt's, on this host
    assert storage.restore_checkpoint("fresh-job", stale) is False
    assert not stale.exists()
    # A pointer naming a checkpoint that is not (or no longer) published: none either.
    store.put_bytes("jobs/broken/checkpoint.json", b'{"number": 4}')
    stale.mkdir()
    assert storage.restore_checkpoint("broken", stale) is False
    assert not stale.exists()


# ---- an unreachable store ---------------------------------------------------------------


def _fails_unavailable(call: Callable[[], object]) -> float:
    """Seconds `call` took to raise StorageUnavailable; a call that hangs fails the test at
    UNREACHABLE_BOUND_S instead of holding it (it runs in a daemon thread)."""
    outcome: list[BaseException | None] = []
    started = time.monotonic()

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=UNREACHABLE_BOUND_S + 5)
    took = time.monotonic() - started
    assert outcome, f"still waiting on the store after {took:.0f} s"
    assert isinstance(outcome[0], StorageUnavailable), f"raised {outcome[0]!r}"
    return took


def test_nobody_listening_fails_promptly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    store = Store("s3://hone-data", endpoint_url=f"http://127.0.0.1:{free_port()}")
    make_tree(tmp_path / "built")
    for call in (
        lambda: store.get_bytes("a"),
        lambda: store.put_bytes("a", b"x"),
        lambda: store.get_file("a", tmp_path / "a"),
        lambda: store.exists("a"),
        lambda: store.list("a"),
        lambda: store.delete("a"),
        lambda: store.published("a"),
        lambda: store.publish_dir(tmp_path / "built", "d"),
        lambda: store.fetch_dir("d", tmp_path / "d"),
        lambda: StoreCache(store, tmp_path / "cache").directory("d"),
    ):
        assert _fails_unavailable(call) < UNREACHABLE_BOUND_S


def test_a_hung_store_fails_in_bounded_time_then_recovers(
    own_s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP: connections are accepted but never answered, the worst case for timeouts."""
    store = Store(own_s3.create_bucket(), endpoint_url=own_s3.endpoint_url)
    make_tree(tmp_path / "built")
    for n in range(30):  # more files than the client's connection pool holds
        (tmp_path / "built" / "many" / f"{n}.bin").parent.mkdir(exist_ok=True)
        (tmp_path / "built" / "many" / f"{n}.bin").write_bytes(b"n" * n)
    store.publish_dir(tmp_path / "built", "datasets/abc")
    paused = threading.Event()
    real_published = store.published

    def published_then_hang(prefix: str) -> dict[str, int] | None:
        listing = real_published(prefix)  # the store hangs between listing and files
        own_s3.pause()
        paused.set()
        return listing

    def after_pause(call: Callable[[], object]) -> Callable[[], object]:
        return lambda: paused.wait(timeout=10) and call()

    monkeypatch.setattr(store, "published", published_then_hang)
    calls: list[Callable[[], object]] = [
        lambda: store.fetch_dir("datasets/abc", tmp_path / "fetched"),
        after_pause(lambda: store.get_bytes("datasets/abc/config.json")),
        after_pause(lambda: store.put_bytes("k", b"v")),
    ]
    try:
        with ThreadPoolExecutor(len(calls)) as pool:  # together: each takes ~10 s
            took = list(pool.map(_fails_unavailable, calls))
    finally:
        own_s3.resume()
    assert paused.is_set()
    assert max(took) < UNREACHABLE_BOUND_S, took
    assert not (tmp_path / "fetched").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["built"]  # no temporary left behind
    monkeypatch.setattr(store, "published", real_published)
    store.fetch_dir("datasets/abc", tmp_path / "fetched")  # the same Store works again
    assert (tmp_path / "fetched" / "many" / "29.bin").read_bytes() == b"n" * 29
    gc.collect()  # the failed transfers' leftovers warn now, under this module's filter


def test_a_write_the_store_stops_reading_meets_its_deadline(
    own_s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body bigger than the socket buffers, to a store that stopped reading: aiohttp has no
    timeout for that, the Store's deadline (shortened here) ends it."""
    monkeypatch.setattr(store_module, "WRITE_DEADLINE_S", 3.0)
    monkeypatch.setattr(store_module, "WRITE_MIN_BYTES_PER_S", 1 << 40)
    store = Store(own_s3.create_bucket(), endpoint_url=own_s3.endpoint_url)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (32 << 20))
    store.put_bytes("warm", b"x")
    own_s3.pause()
    try:
        took = _fails_unavailable(lambda: store.put_file(big, "uploads/big"))
    finally:
        own_s3.resume()
    assert took < 3.0 + 5
    store.put_file(big, "uploads/big")
    with store.open("uploads/big") as handle:
        assert handle.seek(0, 2) == 32 << 20


def test_a_killed_store_is_unavailable_and_restarts_empty(own_s3: S3Server) -> None:
    store = Store(own_s3.create_bucket(), endpoint_url=own_s3.endpoint_url)
    store.put_bytes("k", b"v")
    own_s3.kill()
    assert _fails_unavailable(lambda: store.get_bytes("k")) < UNREACHABLE_BOUND_S
    own_s3.start()  # same port, but moto kept nothing: the bucket is gone
    with pytest.raises(StoreMissing):
        store.get_bytes("k")
    store = Store(own_s3.create_bucket(store.root), endpoint_url=own_s3.endpoint_url)
    store.put_bytes("k", b"again")
    assert store.get_bytes("k") == b"again"


def _endpoint(store: Store) -> str | None:
    return None if store.local else store.fs.endpoint_url
