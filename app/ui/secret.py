"""The dashboard's server secret: it signs session cookies and CSRF tokens.

It is kept in the store, which every API process and host of a deployment shares, and made at
random the first time any of them needs it: sessions then survive restarts and are good on
every API process, with nothing to configure. Deleting the object (`ui/session-secret`) ends
every session. Two processes that make it at the same moment both re-read the store and a
signature that fails re-reads it too (at most every REFRESH_SECONDS), so they agree.
"""

from __future__ import annotations

import secrets
import threading
import time

from app.storage import layout
from app.storage.errors import StoreMissing
from app.storage.store import Store

STORE_KEY = layout.ui_secret()
SECRET_BYTES = 32
REFRESH_SECONDS = 10.0


class SecretKeeper:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._secret: bytes | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> bytes:
        """The secret (read or made on first use; StorageUnavailable while the store is down)."""
        with self._lock:
            if self._secret is None:
                self._load()
            assert self._secret is not None
            return self._secret

    def refreshed(self) -> bytes | None:
        """The store's secret if it differs from the one held (another process made it, or
        an operator replaced it); None when unchanged or read too recently."""
        with self._lock:
            if self._secret is None or time.monotonic() - self._loaded_at < REFRESH_SECONDS:
                return None
            before = self._secret
            self._load()
            return None if self._secret == before else self._secret

    def _load(self) -> None:
        try:
            secret = self.store.get_bytes(STORE_KEY)
        except StoreMissing:
            self.store.put_bytes(STORE_KEY, secrets.token_bytes(SECRET_BYTES))
            secret = self.store.get_bytes(STORE_KEY)  # what the store kept, if two wrote
        self._secret, self._loaded_at = secret, time.monotonic()
