"""The verified-credential cache that keeps the device sync hot path free of auth queries.

Invariant: only device credentials are cached. An entry maps sha256(bearer token) to the device
principal and lives at most ``ttl`` seconds, so a device revoked on another server is refused
within ``ttl``; on this server at once (``forget``). Operator tokens are read from the database
on every call (operators call rarely, and a revoked admin token must not be able to mint a new
one during the cache window); enrollment tokens have uses, counted in the database.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from controlplane.auth.policy import Principal


class CredentialCache:
    """A bounded TTL map from token to principal; safe to share between threads."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._data: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        key = self.key(token)
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < time.monotonic():
                self._data.pop(key, None)
                return None
            return hit[1]

    def put(self, token: str, principal: Principal) -> None:
        if principal.kind != "device" or self.ttl <= 0:
            return
        with self._lock:
            key = self.key(token)
            self._data[key] = (time.monotonic() + self.ttl, principal)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def forget(self, principal_id: str) -> None:
        """Drop every entry for ``principal_id`` (a revoked device). O(entries): it runs on
        the rare revocation, never on the request path."""
        with self._lock:
            for key in [k for k, (_, p) in self._data.items() if p.id == principal_id]:
                del self._data[key]
