"""Label selectors: ``site=berlin,tier=canary`` (equality on every pair).

For listing, an empty selector selects everything. A rollout target must be explicit: an empty
one is refused (a forgotten flag must not update the whole fleet) and ``*`` means every device.

Kept tiny and pure so richer forms (``!=``, ``in``) can be added in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from controlplane.errors import InvalidArgumentError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{0,63}$")


def parse_labels(text: str, *, allow_empty_values: bool = False) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict. Raises InvalidArgumentError naming the bad pair."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.match(key) or not _VALUE.match(value):
            raise InvalidArgumentError(
                f"bad label {part!r}: write key=value with letters, digits, '_', '.', '-'"
            )
        if not value and not allow_empty_values:
            raise InvalidArgumentError(f"label {key!r} has no value")
        if key in labels:
            # site=berlin,site=paris can match nothing (or silently mean the last one).
            raise InvalidArgumentError(f"label {key!r} given twice: a label has one value")
        labels[key] = value
    return labels


WHOLE_FLEET = "*"


def parse_target(text: str) -> dict[str, str]:
    """A rollout's selector as a dict: ``*`` is the whole fleet (``{}``), empty is refused.

    Raises InvalidArgumentError for an empty or malformed selector.
    """
    if text.strip() == WHOLE_FLEET:
        return {}
    if not text.strip():
        raise InvalidArgumentError(
            "an empty selector would target every device: name the devices (e.g. site=berlin) "
            f"or pass '{WHOLE_FLEET}' to roll out to the whole fleet"
        )
    return parse_labels(text)


def parse_selector(text: str) -> dict[str, str]:
    """A listing's selector: empty or ``*`` selects everything."""
    return {} if text.strip() in ("", WHOLE_FLEET) else parse_labels(text)


def validate_labels(
    labels: Mapping[str, str], *, allow_empty_values: bool = False
) -> dict[str, str]:
    return (
        parse_labels(
            ",".join(f"{k}={v}" for k, v in labels.items()), allow_empty_values=allow_empty_values
        )
        if labels
        else {}
    )


def matches(selector: Mapping[str, str], labels: Mapping[str, object]) -> bool:
    return all(str(labels.get(k)) == v for k, v in selector.items())
