"""HTTP to the API: authentication, retries with backoff, and errors turned into hone's.

Every request is retried, up to `max_retries` times, when the server could not be reached
(or dropped the connection) and when it answers 429 or 503: after `Retry-After` seconds when
the answer says so, else after 0.5 s, 1 s, 2 s ... (at most 8 s). A retry sends exactly the
same request, headers included, so a create keeps its `Idempotency-Key` and the server makes
one resource however many attempts it took. A request body is rebuilt for each attempt by a
factory (a file reopened, a folder zipped again), since a streamed body can be sent only once.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx

from hone.errors import APIConnectionError, APIError

USER_AGENT = "hone-python/0.1"
RETRY_STATUSES = frozenset({429, 503})
# A Retry-After longer than this is not slept through inside a call: the error is raised,
# with the header, for the caller to decide.
MAX_RETRY_AFTER_SECONDS = 60.0
BACKOFF_START, BACKOFF_CAP = 0.5, 8.0

BodyFactory = Callable[[ExitStack], dict[str, Any]]


def backoff(attempt: int) -> float:
    """Seconds before retry number `attempt + 1` when the server said nothing."""
    return float(min(BACKOFF_CAP, BACKOFF_START * 2**attempt))


def retry_after(response: httpx.Response) -> float | None:
    """The answer's Retry-After in seconds (a number or an HTTP date), or None."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        max_retries: int,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        headers = {"User-Agent": USER_AGENT}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.http = http or httpx.Client(
            base_url=base_url, headers=headers, timeout=httpx.Timeout(timeout)
        )

    def close(self) -> None:
        self.http.close()

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body of a successful request."""
        response = self.request(method, path, **kwargs)
        return response.json() if response.content else None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        body: BodyFactory | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send with retries; return the (read) response, or raise hone's error for it."""
        response = self._send(method, path, params, json, headers, body, timeout, stream=False)
        return response

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """A successful response whose body is read as it arrives; closed on exit."""
        response = self._send(method, path, params, None, headers, None, timeout, stream=True)
        try:
            yield response
        finally:
            response.close()

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        json: Any,
        headers: dict[str, str] | None,
        body: BodyFactory | None,
        timeout: float | httpx.Timeout | None,
        *,
        stream: bool,
    ) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                with ExitStack() as resources:
                    extra = body(resources) if body else {}
                    request = self.http.build_request(
                        method,
                        path,
                        params=params,
                        json=json,
                        headers=headers,
                        timeout=timeout if timeout is not None else self.http.timeout,
                        **extra,
                    )
                    response = self.http.send(request, stream=stream)
            except httpx.UnsupportedProtocol as exc:
                raise APIConnectionError(self.base_url, str(exc)) from exc
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise APIConnectionError(self.base_url, _reason(exc)) from exc
                time.sleep(backoff(attempt))
                attempt += 1
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                delay = retry_after(response)
                if delay is None or delay <= MAX_RETRY_AFTER_SECONDS:
                    response.close()
                    time.sleep(backoff(attempt) if delay is None else delay)
                    attempt += 1
                    continue
            if response.status_code >= 400:
                raise self._error(response, stream=stream)
            return response

    def _error(self, response: httpx.Response, *, stream: bool) -> APIError:
        try:
            if stream:
                response.read()
            text = response.text
        except httpx.HTTPError:
            text = ""
        finally:
            response.close()
        try:
            parsed: Any = response.json() if text else None
        except ValueError:
            parsed = None
        return APIError.from_response(response.status_code, parsed, dict(response.headers), text)


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    return str(exc) or type(exc).__name__
