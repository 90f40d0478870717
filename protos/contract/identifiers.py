"""Identifiers both sides check the same way: artifact digests and enrollment keys.

A sha256 digest is always written as 64 lowercase hex characters; that form is also what keeps
path separators and ``..`` out of the file names artifacts are stored under, on either side.
"""

from __future__ import annotations

import re

from protos.contract.errors import ContractError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
#: Made once by the agent (random) and sent with every Enroll; the server accepts this shape only.
ENROLLMENT_KEY = re.compile(r"[A-Za-z0-9_-]{16,128}")


def is_sha256(value: object) -> bool:
    """Whether ``value`` is a sha256 digest in the contract's form (64 lowercase hex)."""
    return isinstance(value, str) and SHA256_HEX.fullmatch(value) is not None


def check_sha256(value: object) -> str:
    """Return ``value`` if it is a sha256 digest in the contract's form; raise ContractError."""
    if not is_sha256(value):
        shown = value if not isinstance(value, str) else value[:80]
        raise ContractError(f"not a sha256 digest (64 lowercase hex characters): {shown!r}")
    return value  # type: ignore[return-value]


def is_enrollment_key(value: object) -> bool:
    """Whether ``value`` has the shape the server accepts as an enrollment key."""
    return isinstance(value, str) and ENROLLMENT_KEY.fullmatch(value) is not None
