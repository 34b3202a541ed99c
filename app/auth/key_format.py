"""What a string must be to serve as an API key; a leaf module, so settings can check
HONE_BOOTSTRAP_API_KEY when they are read."""

from __future__ import annotations

# Enough for a hex or base64 secret of 16 random bytes or more (`openssl rand -hex 32` gives
# 64 characters); longer strings are not keys, and the Authorization header is bounded anyway.
MIN_KEY_CHARS = 32
MAX_KEY_CHARS = 256


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an API key, or None when it can."""
    if not MIN_KEY_CHARS <= len(key) <= MAX_KEY_CHARS:
        return f"must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters long, not {len(key)}"
    if not key.isascii() or not key.isprintable() or " " in key:
        return "must be printable ASCII without spaces"
    return None
