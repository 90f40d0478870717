"""Parsers for the small languages on the command line: labels, model references, waves.

Every parser raises ``ValueError`` with a message that quotes the offending input; ``main`` turns
it into an argparse usage error (exit 2). Selectors are passed to the server untouched: the
server owns their grammar, which may grow richer forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Keys as Kubernetes-style labels: letters, digits and -_./ ; no spaces, '=' or ','.
_LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-/]*[A-Za-z0-9])?")


def parse_label(text: str, *, allow_empty_value: bool) -> tuple[str, str]:
    """One ``key=value``; ``key=`` (empty value) only when ``allow_empty_value``."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"label {text!r} is not key=value")
    key, value = key.strip(), value.strip()
    if not _LABEL_KEY.fullmatch(key):
        raise ValueError(
            f"label key {key!r} in {text!r} is invalid: use letters, digits and - _ . /"
        )
    if "," in value:
        raise ValueError(f"label value in {text!r} contains ',': one label per key=value")
    if not value and not allow_empty_value:
        raise ValueError(f"label {text!r} has an empty value")
    return key, value


def parse_labels(items: list[str], *, allow_empty_value: bool = False) -> dict[str, str]:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}``; a key given twice is an error."""
    labels: dict[str, str] = {}
    for item in items:
        key, value = parse_label(item, allow_empty_value=allow_empty_value)
        if key in labels:
            raise ValueError(f"label {key!r} given twice")
        labels[key] = value
    return labels


def parse_label_list(text: str) -> dict[str, str]:
    """A comma-joined list as ``--labels site=berlin,tier=canary`` takes it."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"no labels in {text!r}: use k=v,k2=v2")
    return parse_labels(items)


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str  # "" means "the newest version"

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version else self.name


def parse_model_ref(text: str, *, require_version: bool) -> ModelRef:
    """``NAME:VERSION`` (or ``NAME`` alone when ``require_version`` is false)."""
    name, sep, version = text.partition(":")
    name, version = name.strip(), version.strip()
    if not name:
        raise ValueError(f"model reference {text!r} has no name: use NAME:VERSION")
    if sep and not version:
        raise ValueError(f"model reference {text!r} has an empty version: use NAME:VERSION")
    if require_version and not version:
        raise ValueError(f"model reference {text!r} needs a version: use NAME:VERSION")
    if ":" in version:
        raise ValueError(f"model reference {text!r} has more than one ':'")
    return ModelRef(name=name, version=version)


def parse_waves(text: str) -> list[float]:
    """``"1%,10%,50%,100%"`` -> ``[1.0, 10.0, 50.0, 100.0]``: increasing, ending at 100%."""
    waves: list[float] = []
    for item in text.split(","):
        spelled = item.strip()
        if not spelled.endswith("%"):
            raise ValueError(f"wave {spelled!r} in {text!r} is not a percentage like 10%")
        try:
            percent = float(spelled[:-1])
        except ValueError:
            raise ValueError(f"wave {spelled!r} in {text!r} is not a percentage like 10%") from None
        if not 0 < percent <= 100:
            raise ValueError(f"wave {spelled!r} in {text!r} must be above 0% and at most 100%")
        if waves and percent <= waves[-1]:
            raise ValueError(f"waves in {text!r} must increase")
        waves.append(percent)
    if waves[-1] != 100:
        raise ValueError(f"the last wave in {text!r} must be 100%")
    return waves
