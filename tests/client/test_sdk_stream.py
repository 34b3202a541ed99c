"""A job's live events through a TCP proxy that cuts the connection mid-job: the SDK's
iterator reconnects with Last-Event-ID and, in the end, has yielded every event of the job
exactly once, in order; waiting on the cancelled job raises JobFailed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

import hone
from tests.app.jobs.flows import LONG_IMAGE_JOB
from tests.client.conftest import Live
from tests.factories.uploads import digits_zip
from tests.support.tcp_proxy import TcpProxy

CUTS = 2
EVERY = 3  # events between cuts


def test_a_dropped_stream_resumes_without_losing_or_repeating_an_event(
    live: Live, tmp_path: Path
) -> None:
    direct = hone.Client(live.url, live.key)
    path = tmp_path / "digits.zip"
    digits_zip(path, per_class=5)
    dataset = direct.datasets.upload(path, task="image_classification", wait=True)
    job = direct.jobs.create(dataset_id=dataset.id, model_name="sdk-stream", **LONG_IMAGE_JOB)

    target = urlsplit(live.url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
        proxied = hone.Client(f"http://{proxy.host}:{proxy.port}", live.key, max_retries=4)
        seen: list[int] = []
        cut_at: list[int] = []  # connections the proxy had accepted at each cut
        cancelled = False
        for event in proxied.jobs.stream(job.id):
            seen.append(event.id)
            # Events already buffered on the client's side come out of a cut connection
            # first: each cut waits until the iterator is reading from a new connection.
            reconnected = not cut_at or proxy.accepted > cut_at[-1]
            if len(cut_at) < CUTS and len(seen) >= EVERY * (len(cut_at) + 1) and reconnected:
                cut_at.append(proxy.accepted)
                proxy.cut()  # the open stream is closed under the iterator
                proxy.restore()
            elif len(cut_at) == CUTS and reconnected and not cancelled:
                direct.jobs.cancel(job.id)  # the rest, until `end`, on the last connection
                cancelled = True
        connections = proxy.accepted

    assert cancelled, f"the job ended after {len(seen)} events and {len(cut_at)} cuts"
    assert connections > cut_at[-1] > cut_at[0]  # it reconnected after each cut
    logged = sorted(e.id for e in direct.jobs.events(job.id))
    assert seen == logged  # none lost, none repeated, oldest first
    with pytest.raises(hone.JobFailed) as caught:
        direct.jobs.wait(job.id, timeout=60)
    assert caught.value.job.status == "cancelled"
