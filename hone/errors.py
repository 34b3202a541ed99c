"""One exception per problem the API answers, so `except hone.NotFound:` works.

Every error answer of the API is an RFC 9457 problem (`type`, `title`, `status`, `detail`,
`code`, and `errors` for validation); `APIError` keeps each of those, the whole body and the
response headers. Conditions on the client's side (the server unreachable, a job that failed,
a download that does not match its digest) have their own types, all under `HoneError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hone.types import Dataset, Job


class HoneError(Exception):
    """Base of every error the SDK raises."""


class APIError(HoneError):
    """The API answered with an error status."""

    def __init__(
        self,
        status: int,
        type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.code = code
        self.errors = errors or []
        self.body = body
        self.headers = headers or {}
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"{self.status} {self.title}" if self.title else str(self.status)
        return f"{head}: {self.detail}" if self.detail else head

    @classmethod
    def from_response(
        cls, status: int, body: Any, headers: dict[str, str], text: str = ""
    ) -> APIError:
        """The error class for `status`, filled from a problem body (or the bare text)."""
        problem = body if isinstance(body, dict) else {}
        errors = problem.get("errors")
        error_cls = _BY_STATUS.get(status, APIError)
        return error_cls(
            status,
            type=_str(problem.get("type")),
            title=_str(problem.get("title")),
            detail=_str(problem.get("detail")) or (text.strip()[:500] or None),
            code=_str(problem.get("code")),
            errors=errors if isinstance(errors, list) else None,
            body=body if body is not None else text,
            headers=headers,
        )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class BadRequest(APIError):
    """400: the request is malformed."""


class AuthenticationError(APIError):
    """401: no API key, or one the server does not know."""


class NotFound(APIError):
    """404: no such resource in this key's project (another project's answers the same)."""


class Conflict(APIError):
    """409: the resource is not in a state that allows this (e.g. no ready version)."""


class PayloadTooLarge(APIError):
    """413: the upload is over the server's limit."""


class UnprocessableEntity(APIError):
    """422: the request is well formed but invalid; `errors` names the fields."""


class RateLimited(APIError):
    """429: the server is overloaded; it was retried as often as `max_retries` allows."""


class ServiceUnavailable(APIError):
    """503: a part the server needs is down; it was retried as often as `max_retries` allows."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: AuthenticationError,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
    503: ServiceUnavailable,
}


class APIConnectionError(HoneError):
    """The server could not be reached, or did not answer in time (after the retries)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the API at {url}: {reason}")


class WaitTimeout(HoneError, TimeoutError):
    """`wait(..., timeout=)` ran out before the dataset or job finished."""


class JobFailed(HoneError):
    """The job ended failed or cancelled; `.job` is its final state."""

    def __init__(self, job: Job) -> None:
        self.job = job
        error = job.error or {}
        reason = f": {error.get('message')}" if error.get("message") else ""
        super().__init__(f"job {job.id} {job.status}{reason}")


class DatasetFailed(HoneError):
    """The dataset's processing failed; `.dataset` holds its `error` and audit."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        error = dataset.error or {}
        reason = f": {error.get('message')}" if error.get("message") else ""
        super().__init__(f"dataset {dataset.id} failed{reason}")


class IntegrityError(HoneError):
    """A downloaded artifact does not match the digest the server stated."""
