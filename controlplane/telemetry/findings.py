"""Findings: why a device refused a variant or rolled back from it (the proto's ``Finding`` on an
install event), checked before they are stored, and the latest one per model read back for
``GetDevice``.

Invariants:
- A stored finding has exactly the fields of ``FIELDS``: ``reason`` a code word
  (``validation.check_code_word``); ``interpreter``, ``interpreter_version`` and ``output`` text
  cut to ``max_finding_text_chars`` with a visible marker (``cut_text``); ``sample`` -1 (none)
  or a golden sample's index, at most what the wire's int32 holds; ``observed`` and ``limit``
  finite numbers (an agent sends a non-finite figure as the largest double).
- A finding is never a reason to refuse its event: ``telemetry.services`` drops a malformed one,
  keeps the event and says why in its message.
- The reason is checked for its shape, not against a list: an agent newer than this server may
  know reasons it does not, and they are worth keeping all the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.errors import InvalidArgumentError
from controlplane.fleet.models import Device
from controlplane.telemetry.models import InstallEvent
from controlplane.validation import check_code_word, cut_text, shown

FIELDS = ("reason", "interpreter", "interpreter_version", "sample", "output", "observed", "limit")
#: ``Finding.sample`` is an int32 on the wire; -1 says "no sample".
MAX_SAMPLE = 2**31 - 1


def check_finding(raw: Mapping[str, Any], *, settings: Settings) -> dict[str, Any]:
    """The finding as it is stored: ``raw`` checked and its text cut to its bound.

    Raises InvalidArgumentError naming the first field that is missing, unknown, of the wrong
    type or out of range.
    """
    missing = [name for name in FIELDS if name not in raw]
    if missing:
        raise InvalidArgumentError(f"the finding has no {', '.join(missing)}")
    unknown = sorted(str(name) for name in raw if name not in FIELDS)
    if unknown:
        raise InvalidArgumentError(f"the finding has unknown fields {shown(', '.join(unknown))}")
    texts = {name: _text(raw, name, settings) for name in ("interpreter", "interpreter_version",
                                                           "output")}
    sample = raw["sample"]
    if type(sample) is not int or not -1 <= sample <= MAX_SAMPLE:
        raise InvalidArgumentError(
            f"the finding's sample {shown(str(sample))} is not a golden sample's index "
            f"(0 to {MAX_SAMPLE}) nor -1 (none)")
    return {
        "reason": check_code_word(_str(raw, "reason"), what="finding reason"),
        **texts,
        "sample": sample,
        "observed": _finite(raw, "observed"),
        "limit": _finite(raw, "limit"),
    }


def _str(raw: Mapping[str, Any], name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise InvalidArgumentError(f"the finding's {name} is {type(value).__name__}, not text")
    return value


def _text(raw: Mapping[str, Any], name: str, settings: Settings) -> str:
    return cut_text(_str(raw, name), settings.max_finding_text_chars)


def _finite(raw: Mapping[str, Any], name: str) -> float:
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"the finding's {name} is {type(value).__name__}, "
                                   f"not a number")
    if not math.isfinite(value):
        raise InvalidArgumentError(f"the finding's {name} must be a finite number, got {value}")
    return float(value)


def latest_findings(session: Session, device: Device) -> dict[str, dict[str, Any]]:
    """Per model name, the finding of the latest install event (the last received) that carries
    one about the device's desired variant of that model. One query; models without such an
    event are absent."""
    wanted = [
        sa.and_(InstallEvent.model_name == dm.model_name,
                InstallEvent.version == dm.desired_variant.model_version.version,
                InstallEvent.variant == dm.desired_variant.kind,
                InstallEvent.sha256 == dm.desired_variant.artifact_sha256)
        for dm in device.models
        if dm.desired_variant is not None and dm.desired_variant.artifact_sha256 is not None
    ]
    if not wanted:
        return {}
    latest = (sa.select(sa.func.max(InstallEvent.id))
              .where(InstallEvent.device_id == device.id, InstallEvent.finding.is_not(None),
                     sa.or_(*wanted))
              .group_by(InstallEvent.model_name))
    rows = session.execute(sa.select(InstallEvent.model_name, InstallEvent.finding)
                           .where(InstallEvent.id.in_(latest)))
    return {name: finding for name, finding in rows if finding is not None}
