"""The dashboard's session cookie and CSRF tokens, signed with the server secret (secret.py).

The cookie names the API key the user signed in with by its row id and SHA-256 digest (the
key itself is never stored, sent back or shown), the project, when it was issued and a random
nonce, the session's name in the registry. Each request checks the signature and the age here,
before any database read, then the session's row and its key (auth.py): signing out deletes the
row, and a revoked key ends its sessions as it ends its API access. The CSRF token of a session
is an HMAC of its nonce: pages put it in a hidden field, scripts in a header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "hone_session"
# The sign-in form's own nonce: its token proves the form was ours (no login CSRF).
SIGNIN_COOKIE = "hone_signin"
SESSION_SECONDS = 12 * 3600
SIGNIN_SECONDS = 3600
COOKIE_PATH = "/ui"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_COOKIE_CHARS = 1000


@dataclass(frozen=True)
class UiSession:
    project_id: str
    key_id: str
    key_digest: str
    nonce: str
    issued: int

    @classmethod
    def new(cls, project_id: str, key_id: str, key_digest: str) -> UiSession:
        return cls(project_id, key_id, key_digest, secrets.token_urlsafe(16), int(time.time()))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}|{data}".encode(), hashlib.sha256).digest())


def encode_session(secret: bytes, session: UiSession) -> str:
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    return f"{payload}.{_mac(secret, 'session', payload)}"


def decode_session(secret: bytes, value: str, now: float | None = None) -> UiSession | None:
    """The session a cookie holds, or None: unsigned, altered, malformed or expired."""
    if len(value) > MAX_COOKIE_CHARS:
        return None
    payload, _, signature = value.partition(".")
    if not hmac.compare_digest(signature, _mac(secret, "session", payload)):
        return None
    try:
        fields = json.loads(_unb64(payload))
        session = UiSession(**fields)
    except (ValueError, TypeError, binascii.Error):
        return None
    texts = (session.project_id, session.key_id, session.key_digest, session.nonce)
    if not all(isinstance(t, str) for t in texts) or type(session.issued) is not int:
        return None
    age = (time.time() if now is None else now) - session.issued
    return session if 0 <= age < SESSION_SECONDS else None


def csrf_token(secret: bytes, nonce: str, purpose: str = "csrf") -> str:
    return _mac(secret, purpose, nonce)


def token_matches(secret: bytes, nonce: str, token: str | None, purpose: str = "csrf") -> bool:
    return token is not None and hmac.compare_digest(token, csrf_token(secret, nonce, purpose))


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from our own pages: its Origin (every browser
    sends one with a POST) is this server's, or, without one, Fetch Metadata does not say it
    is cross-site. Behind a proxy, the proxy must pass the Host header through."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == f"{request.url.scheme}://{request.url.netloc}"
    return request.headers.get("sec-fetch-site") in (None, "same-origin", "none")


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        # Behind a TLS-terminating proxy, uvicorn's proxy headers make the scheme https.
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
