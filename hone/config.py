"""Where the client finds its API: arguments, the environment, or what `hone login` saved.

The saved login is a small JSON file, `$XDG_CONFIG_HOME/hone/config.json` (by default
`~/.config/hone/config.json`; `HONE_CONFIG_FILE` names another), readable by its owner only:
it holds an API key. It is written whole to a temporary file created with mode 0600 and then
renamed over the old one, so a crash never leaves half a file or a moment of wider access.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV, KEY_ENV, FILE_ENV = "HONE_API_URL", "HONE_API_KEY", "HONE_CONFIG_FILE"


@dataclass(frozen=True)
class SavedLogin:
    """What `hone login` saved: either may be None (nothing saved, or an unreadable file)."""

    url: str | None = None
    key: str | None = None


def config_path() -> Path:
    """The saved login's file (it need not exist)."""
    explicit = os.environ.get(FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "hone" / "config.json"


def load_saved() -> SavedLogin:
    """The saved login; an empty one when there is no file or it is not a JSON object."""
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return SavedLogin()
    if not isinstance(data, dict):
        return SavedLogin()
    url, key = data.get("url"), data.get("key")
    return SavedLogin(
        url=url if isinstance(url, str) and url else None,
        key=key if isinstance(key, str) and key else None,
    )


def save(url: str, key: str | None) -> Path:
    """Save the login atomically with mode 0600 (its folder 0700 when created); return the
    file's path."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = json.dumps({"url": normalize_url(url), "key": key}, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(body)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/")


def resolve(base_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """(URL, key): each from the argument, else the environment, else the saved login, else
    the local default URL and no key. The saved key is sent only to the saved URL: a key for
    one server never travels to another one named by an argument or the environment."""
    saved = load_saved()
    url = normalize_url(base_url or os.environ.get(URL_ENV) or saved.url or DEFAULT_URL)
    key = api_key or os.environ.get(KEY_ENV)
    if not key and saved.key and saved.url and normalize_url(saved.url) == url:
        key = saved.key
    return url, key or None
