"""Edge guards (pure ASGI): refuse what no endpoint can use before it costs anything, and
stop waiting for a request body that stalls.

- An `Authorization` value longer than any credential Hone accepts: 401, with no hashing and
  no database work (an API key is at most MAX_KEY_CHARS characters).
- A NUL character in the path or query: 400. No id, name or cursor contains one, and
  PostgreSQL text cannot hold one.
- A body over MAX_JSON_BODY_BYTES to any endpoint but dataset upload and prediction: 413.
  A job, an alias or a key is a few KiB; uploads (HONE_MAX_UPLOAD_BYTES) and prediction
  bodies (HONE_MAX_PREDICT_BODY_BYTES) have caps of their own, counted where they are read.
- A request body whose next chunk does not arrive within `body_read_timeout` seconds: 408
  with `Connection: close`, so the connection and whatever the handler held are released.
  (uvicorn's `timeout_keep_alive` only covers idle connections between requests.)

The size and number of header fields are bounded earlier, by the HTTP protocol
(app/http_server.py), before any of them is stored.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.key_format import MAX_KEY_CHARS
from app.errors import BodyTooLarge, RequestTimeout, problem_response

# "Bearer " and the longest key.
MAX_AUTHORIZATION_CHARS = len("Bearer ") + MAX_KEY_CHARS
MAX_JSON_BODY_BYTES = 1024 * 1024


class EdgeGuardMiddleware:
    def __init__(self, app: ASGIApp, body_read_timeout: float) -> None:
        self.app, self.body_read_timeout = app, body_read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = _refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = _body_limit(scope)
        if limit is not None and _declared_length(scope) > limit:
            await problem_response(
                413, "Payload too large", _too_large(limit), "payload_too_large"
            )(scope, receive, send)
            return
        await self.app(scope, self._timed(receive, limit), send)

    def _timed(self, receive: Receive, limit: int | None) -> Receive:
        """`receive`, with a deadline on each body chunk until the body is complete, and the
        body counted against `limit` (None: counted by the endpoint that reads it)."""
        complete = False
        timeout = self.body_read_timeout
        received = 0

        async def receive_body() -> Message:
            nonlocal complete
            if complete:
                return await receive()  # disconnect listeners wait as long as they like
            try:
                async with asyncio.timeout(timeout):  # no task per chunk, unlike wait_for
                    message = await receive()
            except TimeoutError:
                complete = True
                raise RequestTimeout(
                    f"The request body stalled: no data for {timeout:g} s "
                    "(HONE_BODY_READ_TIMEOUT_SECONDS). Send the body without pausing."
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            if limit is not None and message["type"] == "http.request":
                nonlocal received
                received += len(message.get("body", b""))
                if received > limit:
                    complete = True
                    raise BodyTooLarge(_too_large(limit))
            return message

        return receive_body


# The two endpoints that read large bodies, each counting against a cap of its own.
_OWN_CAPS = ("/v1/datasets", "/predict")


def _body_limit(scope: Scope) -> int | None:
    path = scope.get("path", "").rstrip("/")
    return None if path.endswith(_OWN_CAPS) else MAX_JSON_BODY_BYTES


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or ():
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


def _too_large(limit: int) -> str:
    return (
        f"The request body is larger than {limit} bytes, the most a JSON request other than a "
        "prediction may carry."
    )


def _refusal(scope: Scope) -> ASGIApp | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization" and len(value) > MAX_AUTHORIZATION_CHARS:
            return problem_response(
                401,
                "Unauthorized",
                f"The Authorization header is longer than any API key ({MAX_KEY_CHARS} "
                "characters); send `Authorization: Bearer <key>`.",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        return problem_response(
            400,
            "Bad request",
            "The URL contains a NUL character (%00), which no id, name or parameter may hold.",
            "nul_in_url",
        )
    return None
