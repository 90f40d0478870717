"""Runtime version strings (``min_runtime``, a device's interpreter version) and their order.

One parser for both sides. A version is a dotted release of one to four numbers, optionally
followed by a pre-release (``rc1``, ``.dev20250101``, ``a1``, ``b2``), a post-release or a local
tag (``+cpu``). ``2.14`` and ``2.14.0`` are the same release; a pre-release orders below its
release (``2.14.0rc1 < 2.14.0``), which keeps a runtime floor conservative.
"""

from __future__ import annotations

import re

from protos.contract.errors import ContractError

_VERSION = re.compile(
    r"v?(?P<release>\d+(?:\.\d+){0,3})"
    r"(?P<pre>[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview|dev)[-_.]?\d*)*"
    r"(?P<post>[-_.]?(?:post|r|rev)[-_.]?\d*)?"
    r"(?P<local>\+[A-Za-z0-9.]+)?",
    re.IGNORECASE,
)
MAX_VERSION_LENGTH = 64

VersionKey = tuple[tuple[int, ...], int]


def version_key(text: str) -> VersionKey:
    """A sortable key for ``text``. Raises ContractError when it is not a version."""
    if not isinstance(text, str) or len(text) > MAX_VERSION_LENGTH:
        raise ContractError(f"not a runtime version: {text!r}")
    m = _VERSION.fullmatch(text.strip())
    if m is None:
        raise ContractError(f"not a runtime version: {text!r} (expected like 2.14.0)")
    release = [int(p) for p in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    return tuple(release), 0 if m["pre"] else 1


def is_version(text: str) -> bool:
    try:
        version_key(text)
    except ContractError:
        return False
    return True


def at_least(version: str, floor: str) -> bool:
    """Whether ``version`` is ``floor`` or newer. Raises ContractError for a malformed one."""
    return version_key(version) >= version_key(floor)


def newest(versions: list[str]) -> str:
    """The newest of ``versions`` (non-empty). Raises ContractError for a malformed one."""
    return max(versions, key=version_key)
