"""Request id, access log and HTTP metrics for every request (pure ASGI, streams untouched)."""

from __future__ import annotations

import logging
import secrets
import time

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logging import request_id_var
from app.ops.metrics import ApiMetrics

log = logging.getLogger("hone.access")

# nginx's code for "the client closed the connection before the answer": not a server error.
CLIENT_CLOSED = 499
# Metric labels come from a fixed set: a client's made-up method must not create a series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 128 else "req_" + secrets.token_hex(8)
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = client_gone = aborted = False

        async def receive_watched() -> Message:
            nonlocal client_gone
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                client_gone = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive_watched, send_with_id)
        except ClientDisconnect:
            # The client went away mid-body (an upload cut short): nobody is left to answer,
            # and nothing went wrong on this side. Recorded as 499, never as a 500 traceback.
            client_gone = True
        except Exception:
            # Failing before the answer started is a 500 (ServerErrorMiddleware, outside, sends
            # it). Failing after, the client got a status and then a broken body: recorded as
            # 500 too, not as the success it began as, and logged as an aborted answer.
            aborted = started
            status = 500
            raise
        finally:
            if client_gone:
                status = CLIENT_CLOSED
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(elapsed)
            message = "client closed the request" if client_gone else "request"
            if aborted:
                message = "answer aborted after it started"
            log.log(
                logging.WARNING if aborted else logging.INFO,
                message,
                extra={
                    "method": scope["method"][:16],
                    "path": scope["path"][:512],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)
