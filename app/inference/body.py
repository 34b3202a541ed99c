"""A prediction request's body, read with a cap: past it the API stops reading and answers 413.

Without one, a JSON body is read whole into memory, whatever its size (250 MB was accepted,
and the process grew by 730 MiB parsing it), and a multipart body spools to disk. The cap
is `HONE_MAX_PREDICT_BODY_BYTES`; by default it fits one image of `HONE_MAX_IMAGE_BYTES`
sent as base64 with MIME line breaks, so whatever image a dataset keeps can be predicted in
either encoding; more inputs than fit go in several requests. (Inputs per request times
image bytes, 4.3 GiB with the defaults, would not bound the process's memory.)
"""

from __future__ import annotations

import math

from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge

_SLACK_BYTES = 1024**2  # the JSON around the base64, other fields, multipart headers


def body_limit(settings: Settings) -> int:
    if settings.max_predict_body_bytes is not None:
        return settings.max_predict_body_bytes
    encoded = 4 * math.ceil(settings.max_image_bytes / 3)
    return encoded + 2 * math.ceil(encoded / 76) + _SLACK_BYTES  # CRLF every 76 characters


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than the limit of {limit} bytes "
        "(HONE_MAX_PREDICT_BODY_BYTES): send the inputs in several requests.",
        code="body_too_large",
        errors=[{"field": "body", "message": f"larger than {limit} bytes"}],
    )


def check_declared_length(request: Request, limit: int) -> None:
    """413 at once when Content-Length already says the body is too large."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


def disconnected() -> BadRequest:
    return BadRequest("The client went away before sending the body.", code="client_disconnected")


async def read_body(request: Request, limit: int) -> bytearray:
    """The whole body, never more than ``limit`` bytes of it in memory."""
    check_declared_length(request, limit)
    body = bytearray()
    try:
        async for chunk in request.stream():
            if len(body) + len(chunk) > limit:
                raise too_large(limit)
            body += chunk
    except ClientDisconnect:
        raise disconnected() from None
    return body


def capped(request: Request, limit: int) -> Request:
    """The request, whose body raises 413 once more than ``limit`` bytes have come: for
    parsers that read the stream themselves (Starlette's multipart parser)."""
    check_declared_length(request, limit)
    receive = request.receive
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large(limit)
        return message

    return Request(request.scope, capped_receive)
