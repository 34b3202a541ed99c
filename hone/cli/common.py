"""What every command shares: the --json/--url/--key options, the client they configure,
`NAME[@VERSION]` references, and the one line a failure prints."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

import hone
from hone.cli.output import Output

if TYPE_CHECKING:
    from hone import Client

Handler = Callable[[argparse.Namespace, "Context"], int]


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit 2)."""


class Failure(Exception):
    """A command that could not do its work, in words (exit 1)."""


def common_options() -> argparse.ArgumentParser:
    """The options every command takes (a parent parser of each leaf command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", help="machine output: JSON only, no colours or progress"
    )
    common.add_argument(
        "--url", default=None, help="the API's URL (default: HONE_API_URL, else `hone login`'s)"
    )
    common.add_argument(
        "--key", default=None, help="the API key (default: HONE_API_KEY, else `hone login`'s)"
    )
    return common


class Context:
    """A command's output and (made on first use) its client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Output(bool(getattr(args, "json", False)))
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = hone.Client(base_url=self.args.url, api_key=self.args.key)
        return self._client


def split_ref(ref: str) -> tuple[str, int | str | None]:
    """'digits' -> ('digits', None); 'digits@3' -> ('digits', 3); 'digits@prod' -> ('digits',
    'prod') (an alias, or 'latest'). Model names cannot hold '@', so the last one splits."""
    name, at, version = ref.rpartition("@")
    if not at:
        return ref, None
    if not name or not version:
        raise UsageError(f"{ref!r} is not NAME or NAME@VERSION")
    return name, int(version) if version.isdigit() else version


def resolve_version(client: Client, name: str, version: int | str | None) -> int:
    """A version number for NAME[@VERSION]: the number, an alias's version, or the latest
    ready one."""
    if isinstance(version, int):
        return version
    detail = client.models.get(name)
    if version is None or version == "latest":
        if detail.latest_version is None:
            raise UsageError(f"model {name!r} has no ready version yet")
        return int(detail.latest_version)
    aliases = dict(detail.aliases or {})
    if version not in aliases:
        known = ", ".join(sorted(aliases)) or "none"
        raise UsageError(f"model {name!r} has no alias {version!r} (aliases: {known})")
    return int(aliases[version])


def describe(exc: BaseException) -> str:
    """The one line that says what went wrong, for a person."""
    if isinstance(exc, hone.APIConnectionError):
        return (
            f"cannot reach the API at {exc.url}: {exc.reason}. Is it running? "
            "Set --url or HONE_API_URL, or run `hone login`."
        )
    if isinstance(exc, hone.AuthenticationError):
        why = f": {exc.detail}" if exc.detail else ""
        return (
            f"the API key was refused (401){why}. Run `hone login`, or set HONE_API_KEY "
            "to a valid key."
        )
    if isinstance(exc, hone.APIError):
        detail = exc.detail or exc.title or f"the API answered {exc.status}"
        fields = [
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in exc.errors
            if isinstance(e, dict) and e.get("message") and str(e.get("message")) not in detail
        ]
        return "; ".join([detail, *fields])
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__
