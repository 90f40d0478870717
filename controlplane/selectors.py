"""Labels and label selectors: ``site=berlin,tier=canary`` (equality on every pair).

A label map is validated as a map, key by key and value by value: a value can never hold a ``,``
or ``=`` that would make another label when the map is written out. A selector is the text form;
every pair in it must be a real ``key=value`` (``,``, ``" , "`` and ``a=1,,b=2`` are refused,
not read as "no condition"). For listing, an empty selector or ``*`` selects everything. A
rollout target must be explicit: an empty one is refused (a forgotten flag must not update the
whole fleet) and ``*`` means every device.

Kept tiny and pure so richer forms (``!=``, ``in``) can be added in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from controlplane.errors import InvalidArgumentError

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}")
_VALUE = re.compile(r"[A-Za-z0-9_.\-]{0,63}")
_RULE = "letters, digits, '_', '.', '-' (keys also '/'), at most 63 characters"
WHOLE_FLEET = "*"


def validate_labels(
    labels: Mapping[str, str], *, allow_empty_values: bool = False
) -> dict[str, str]:
    """``labels`` checked key by key and value by value. Raises InvalidArgumentError naming
    the bad one. An empty value (``allow_empty_values``) means "remove this label"."""
    checked: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidArgumentError(f"bad label key {str(key)[:80]!r}: use {_RULE}")
        if not isinstance(value, str) or not _VALUE.fullmatch(value):
            raise InvalidArgumentError(
                f"bad value {str(value)[:80]!r} for label {key!r}: use {_RULE}")
        if not value and not allow_empty_values:
            raise InvalidArgumentError(f"label {key!r} has no value")
        checked[key] = value
    return checked


def parse_labels(text: str, *, allow_empty_values: bool = False) -> dict[str, str]:
    """``k=v,k2=v2`` as a dict. Raises InvalidArgumentError naming the bad pair (an empty pair
    included: ``a=1,,b=2`` or a lone ``,``)."""
    labels: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise InvalidArgumentError(
                f"bad selector {text!r}: {part!r} is not key=value" if part else
                f"bad selector {text!r}: it has an empty pair (a stray ',')")
        if key in labels:
            # site=berlin,site=paris can match nothing (or silently mean the last one).
            raise InvalidArgumentError(f"label {key!r} given twice: a label has one value")
        labels[key] = value
    return validate_labels(labels, allow_empty_values=allow_empty_values)


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


def matches(selector: Mapping[str, str], labels: Mapping[str, object]) -> bool:
    return all(str(labels.get(k)) == v for k, v in selector.items())
