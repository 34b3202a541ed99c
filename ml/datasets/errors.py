"""The one error type ingestion raises for problems with the user's upload."""

from typing import Any


class IngestError(Exception):
    """A problem with the user's upload.

    ``code`` is a stable snake_case id clients can branch on; ``message`` tells the user what is
    wrong and how to fix it. ``status`` is the HTTP status the API should answer with:
    400 malformed or unreadable file, 413 too large, 415 unsupported file type,
    422 semantically invalid (a single label, a missing column, the wrong task for the file kind).
    ``field`` names the request field at fault (``file``, ``task``, ``text_column``, ...).
    ``report`` is the audit of what was read when the refusal came after reading the examples
    (a single label, nothing usable): which parts were dropped and why.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = "file",
        status: int = 422,
        report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.status = status
        self.report = report

    def __repr__(self) -> str:
        return f"IngestError({self.code!r}, {self.message!r}, status={self.status})"
