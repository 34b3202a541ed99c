"""The API's HTTP/1.1 protocol: uvicorn's httptools protocol with a bounded request head.

httptools (llhttp) has no limit of its own: it buffers a header value until its end, so a
32 MB `Authorization` or 100,000 header fields were read whole. uvicorn's h11 protocol bounds
the head (`h11_max_incomplete_event_size`), but answers a plain-text 400 and costs more per
request on the prediction hot path. This subclass counts the head as it arrives and refuses
past MAX_HEAD_BYTES or MAX_HEADERS with 431 problem details, then closes the connection;
at most MAX_HEAD_BYTES plus one socket read is ever held.
"""

from __future__ import annotations

import json
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import PROBLEM

log = logging.getLogger("hone.http")

# The request line and every header field (name, value, separators): Node's default; nginx's
# default buffers allow 8 KB per line.
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
# After a refusal, what the client still sends is read and dropped for this long before the
# socket closes: closing with unread data would reset the connection, and the client could
# lose the answer (nginx's lingering close).
LINGER_SECONDS = 1.0


class _HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_open = False  # between the request's first byte and the end of its headers
    _head_bytes = 0  # what the parser has handed over: the target and complete fields
    _head_received = 0  # socket reads while the head stayed open (an upper bound)
    _header_count = 0
    _refused: str | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = self._head_received = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refuse(f"more than {MAX_HEADERS} header fields")
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._refused is not None or self.transport.is_closing():
            return  # lingering after a refusal: dropped
        super().data_received(data)  # a refusal in a callback ends in send_400_response
        if self._head_open and self._refused is None and not self.transport.is_closing():
            # A header value still incomplete stays inside the parser: count what came in.
            self._head_received += len(data)
            if self._head_received > MAX_HEAD_BYTES:
                self._refused = f"a request head over {MAX_HEAD_BYTES} bytes"
                self._send_431()

    def send_400_response(self, msg: str) -> None:
        if self._refused is not None:
            self._send_431()
        else:
            super().send_400_response(msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(f"a request head over {MAX_HEAD_BYTES} bytes")

    def _refuse(self, reason: str) -> None:
        self._refused = reason
        raise _HeadTooLarge(reason)  # stops the parser; uvicorn then calls send_400_response

    def _send_431(self) -> None:
        reason = self._refused or "a request head too large"
        log.warning("refused a request head", extra={"reason": reason, "client": self.client})
        body = json.dumps(
            {
                "type": "https://hone.dev/problems/request-header-fields-too-large",
                "title": "Request header fields too large",
                "status": 431,
                "detail": f"The request has {reason}; at most {MAX_HEADERS} header fields "
                f"and {MAX_HEAD_BYTES} bytes of request line and headers are read.",
                "code": "request_header_fields_too_large",
            }
        ).encode()
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head += [
            b"content-type: " + PROBLEM.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
