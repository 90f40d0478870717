"""The one error the contract raises: data that does not follow it."""

from __future__ import annotations


class ContractError(ValueError):
    """Bytes or fields that break the shared contract (malformed document, bad digest, a
    quantization that does not fit its tensor). Each side wraps it in its own data error."""
