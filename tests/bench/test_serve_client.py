"""The serving benchmark's lean HTTP client and its reading of Server-Timing."""

import asyncio

import pytest

from bench.http_client import Connection, post_json
from bench.serve import _server_timing, overhead


async def _echo_server(replies: list[bytes]) -> tuple[asyncio.Server, list[bytes]]:
    """Answers each request on a connection with the next reply; records what it was sent."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for reply in replies:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            received.append(head + await reader.readexactly(length))
            writer.write(reply)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), received


def test_keep_alive_requests_get_their_own_replies() -> None:
    async def run() -> None:
        replies = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nserver-timing: a;dur=1\r\n\r\nok",
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
        ]
        server, received = await _echo_server(replies)
        port = server.sockets[0].getsockname()[1]
        connection = await Connection.open(f"http://127.0.0.1:{port}")
        request = post_json("/v1/models/m/predict", b'{"inputs": ["hi"]}', {"Authorization": "k"})
        first = await connection.send(request)
        second = await connection.send(request)
        await connection.close()
        server.close()
        assert (first.status, first.body, first.headers["server-timing"]) == (200, b"ok", "a;dur=1")
        assert (second.status, second.body, second.headers["retry-after"]) == (429, b"", "1")
        assert received[0].startswith(b"POST /v1/models/m/predict HTTP/1.1\r\n")
        assert (
            received[0].endswith(b'\r\n\r\n{"inputs": ["hi"]}')
            and b"Authorization: k" in received[0]
        )

    asyncio.run(run())


def test_a_reply_without_content_length_is_refused() -> None:
    async def run() -> None:
        server, _ = await _echo_server([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"])
        port = server.sockets[0].getsockname()[1]
        connection = await Connection.open(f"http://127.0.0.1:{port}")
        with pytest.raises(ValueError, match="Content-Length"):
            await connection.send(post_json("/", b"{}", {}))
        server.close()

    asyncio.run(run())


def test_overhead_splits_a_lone_request_by_server_timing() -> None:
    timing = _server_timing(
        "queue;dur=0.02, inference;dur=7.50, forward;dur=6.10, handler;dur=7.70"
    )
    assert timing == {"queue": 0.02, "inference": 7.5, "forward": 6.1, "handler": 7.7}
    one = {"p50_ms": 8.6, "server_ms": timing, "http_ms": 0.9, "paired_overhead_ms": 2.4}
    parts = overhead(one, forward_ms=6.0)
    assert parts["total_ms"] == pytest.approx(2.6)
    assert parts["pipeline_ms"] == pytest.approx(1.5)  # preprocessing and formatting
    assert parts["handler_ms"] == pytest.approx(0.18)
    assert parts["paired_ms"] == 2.4
