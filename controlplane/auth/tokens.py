"""Bearer token format: ``ef<kind>_<id>_<secret>``.

``kind`` is ``o`` (operator), ``e`` (enrollment) or ``d`` (device). The id is public and finds the
row; the 256-bit secret is stored only as its sha256 and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

KINDS = {"o": "operator", "e": "enrollment", "d": "device"}


@dataclass(frozen=True)
class ParsedToken:
    kind: str  # operator | enrollment | device
    id: str
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def mint(kind: str, token_id: str | None = None) -> tuple[str, str, str]:
    """A new token of ``kind``: returns (id, secret, the full token string)."""
    letter = next(k for k, v in KINDS.items() if v == kind)
    token_id = token_id or secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"ef{letter}_{token_id}_{secret}"


def parse(token: str) -> ParsedToken | None:
    """The parts of a well-formed token, or None (never raises on hostile input)."""
    if len(token) > 512 or not token.startswith("ef") or len(token) < 4:
        return None
    kind = KINDS.get(token[2])
    if kind is None or token[3] != "_":
        return None
    token_id, sep, secret = token[4:].partition("_")
    # Device ids are UUIDs (hyphens), others hex; secrets are urlsafe base64 (may contain "_").
    if not sep or not token_id or not secret:
        return None
    return ParsedToken(kind=kind, id=token_id, secret=secret)
