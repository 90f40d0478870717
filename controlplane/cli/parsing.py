"""Parsers for the small languages on the command line: labels, model references, and a
rollout plan's waves, shares, counts, start time, cron window and time zone.

Every parser raises ``ValueError`` with a message that quotes the offending input; ``main`` turns
it into an argparse usage error (exit 2). Selectors are passed to the server untouched: the
server owns their grammar, which may grow richer forms.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from controlplane.durations import parse_duration

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


def parse_waves(text: str) -> list[str]:
    """``"5,10%,50%,100%"`` -> ``["5", "10%", "50%", "100%"]``: cumulative wave sizes, each a
    device count or a share of the matching devices, strictly increasing within its kind (the
    server sizes both kinds against the fleet it matched), ending at 100%."""
    waves: list[str] = []
    last_count, last_share = 0, 0.0
    for item in text.split(","):
        spelled = item.strip()
        if spelled.endswith("%"):
            percent = _percent(spelled, what=f"wave {spelled!r} in {text!r}")
            if not 0 < percent <= 100:
                raise ValueError(f"wave {spelled!r} in {text!r} must be above 0% and at most "
                                 "100%, e.g. 1%,10%,100%")
            if percent <= last_share:
                raise ValueError(f"waves in {text!r} must increase: they are cumulative, e.g. "
                                 "1%,10%,50%,100%")
            last_share = percent
            waves.append(f"{percent:g}%")
        elif spelled.isdigit():
            count = int(spelled)
            if count < 1:
                raise ValueError(f"wave {spelled!r} in {text!r} must be at least 1 device")
            if count <= last_count:
                raise ValueError(f"waves in {text!r} must increase: they are cumulative, e.g. "
                                 "5,50,100%")
            last_count = count
            waves.append(str(count))
        else:
            raise ValueError(f"wave {spelled!r} in {text!r} is not a device count like 5 or a "
                             "percentage like 10%")
    if waves[-1] != "100%":
        raise ValueError(f"the last wave in {text!r} must be 100% (every matching device), "
                         f"e.g. {','.join(waves)},100%")
    return waves


def _percent(spelled: str, *, what: str) -> float:
    """The number before the ``%`` of ``spelled``; finite (``nan%``/``inf%`` are refused)."""
    try:
        percent = float(spelled[:-1])
    except ValueError:
        raise ValueError(f"{what} is not a percentage like 10%") from None
    if not math.isfinite(percent):
        raise ValueError(f"{what} is not a percentage like 10%")
    return percent + 0.0   # -0% reads as 0%


def parse_share(text: str, *, maximum: float = 1.0, example: str = "95%") -> float:
    """``"95%"`` or ``"0.95"`` -> ``0.95``; from 0 to ``maximum`` (as a fraction)."""
    spelled = text.strip()
    if spelled.endswith("%"):
        value = _percent(spelled, what=f"{text!r}") / 100
    else:
        try:
            value = float(spelled)
        except ValueError:
            raise ValueError(f"{text!r} is not a share: give e.g. {example}") from None
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise ValueError(f"{text!r} must be from 0 to {maximum * 100:g}%, e.g. {example}")
    return value


def parse_count_or_share(text: str) -> str:
    """``"3"`` (devices) or ``"5%"`` (of the finished devices), as the wire carries it."""
    spelled = text.strip()
    if spelled.endswith("%"):
        percent = _percent(spelled, what=f"{text!r}")
        if not 0 <= percent <= 100:
            raise ValueError(f"{text!r} must be from 0% to 100%, e.g. 5%")
        return f"{percent:g}%"
    if not spelled.isdigit():
        raise ValueError(f"{text!r} is not a device count like 3 or a percentage like 5%")
    return str(int(spelled))


def parse_start_at(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """An RFC 3339 time (``2026-05-01T22:00:00Z``; one without a zone is refused, as it would
    mean different moments on different machines) or ``+30m``: that long after ``now``."""
    spelled = text.strip()
    if spelled.startswith("+"):
        moment = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(
            seconds=parse_duration(spelled[1:]))
        return moment.astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(spelled.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"start time {text!r} is not an RFC 3339 time like "
                         "2026-05-01T22:00:00Z or a delay like +30m") from None
    if moment.tzinfo is None:
        raise ValueError(f"start time {text!r} has no time zone: add Z (UTC) or an offset, "
                         "e.g. 2026-05-01T22:00:00Z")
    return moment.astimezone(dt.UTC)


# One cron field: numbers, names (mon, jan), ranges, lists, steps and '*'.
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/\-]+")


def parse_cron(text: str) -> str:
    """A 5-field cron expression (minute hour day month weekday), checked for shape only: the
    server parses it fully. Returned with single spaces."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"maintenance window {text!r} has {len(fields)} fields; give 5 "
                         "(minute hour day month weekday) in quotes, e.g. '0 22 * * mon-fri'")
    for field_text in fields:
        if not _CRON_FIELD.fullmatch(field_text):
            raise ValueError(f"cron field {field_text!r} in {text!r} is not valid, e.g. "
                             "'0 22 * * mon-fri'")
    return " ".join(fields)


# IANA names: Area/Location, letters digits _ + - ; UTC and Etc/GMT+1 included.
_TIME_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*")


def parse_time_zone(text: str) -> str:
    """An IANA time zone name, checked for shape only (the server knows which exist)."""
    spelled = text.strip()
    if not _TIME_ZONE.fullmatch(spelled):
        raise ValueError(f"time zone {text!r} is not an IANA name like Europe/Berlin or UTC")
    return spelled
