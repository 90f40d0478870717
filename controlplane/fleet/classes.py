"""Hardware classes: devices grouped by what decides which variant they can run and how fast.

A class is a pure function of a hardware profile (``hardware_class``), over the fields selection
and the agent's validation depend on, each made coarse enough that two devices of one product
line fall in one class:
- ``arch`` (``aarch64``, ``armv7l``, ``x86_64``), as reported;
- the interpreter's name and release series (``tflite-runtime 2.14``: kernels change between
  releases, not between their patch versions);
- the RAM tier: total RAM rounded to the nearest power of two of MiB (a "4G" board reports a
  little less than 4 GiB);
- accelerator delegates other than XNNPACK (built into every interpreter), sorted.

Invariants:
- ``key`` is stable: the same fields give the same key on every server and every release that
  keeps ``CLASS_SCHEME``; it is ``hc-`` and 12 hex digits of a sha256 over the canonical fields.
- ``name`` is readable and also unique per key (it shows every field), at most 64 characters.
- A profile that reports none of the fields (an agent that could not probe) has a class too,
  ``unknown``-valued fields and all, so such devices are grouped rather than scattered.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLASS_SCHEME = 1
CLASS_KEY = re.compile(r"hc-[0-9a-f]{12}")
BUILT_IN_DELEGATES = frozenset({"xnnpack"})
MAX_CLASS_NAME_CHARS = 64


@dataclass(frozen=True)
class HardwareClass:
    key: str
    name: str
    fields: Mapping[str, str]


def hardware_class(profile: Mapping[str, Any] | None) -> HardwareClass:
    """The class of a stored profile (``MessageToDict`` form, proto field names)."""
    profile = profile or {}
    interp = profile.get("interpreter") or {}
    fields = {
        "arch": str(profile.get("arch") or "unknown"),
        "interpreter": str(interp.get("name") or "unknown"),
        "series": _series(str(interp.get("version") or "")),
        "ram": ram_tier(_int(profile.get("ram_bytes"))),
        "accelerators": "+".join(sorted({str(d) for d in profile.get("delegates") or ()}
                                        - BUILT_IN_DELEGATES)) or "cpu",
    }
    canonical = json.dumps({"scheme": CLASS_SCHEME, **fields}, sort_keys=True)
    key = "hc-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    name = (f"{fields['arch']}/{fields['interpreter']}-{fields['series']}/{fields['ram']}/"
            f"{fields['accelerators']}")
    if len(name) > MAX_CLASS_NAME_CHARS:   # a long arch or delegate list: the key stays unique
        name = name[:MAX_CLASS_NAME_CHARS - 15] + "~" + key
    return HardwareClass(key=key, name=name, fields=fields)


def ram_tier(ram_bytes: int) -> str:
    """``512M``, ``4G``...: the nearest power of two of MiB; ``unknown`` for 0."""
    if ram_bytes <= 0:
        return "unknown"
    mib = 2 ** max(0, round(math.log2(ram_bytes / 2**20)))
    return f"{mib // 1024}G" if mib >= 1024 else f"{mib}M"


def _series(version: str) -> str:
    parts = version.split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"{int(parts[0])}.{int(parts[1])}"
    return version[:16] or "unknown"


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def hardware_facts(profile: Mapping[str, Any] | None) -> dict[str, object]:
    """What a selector's hardware terms read of a device (``controlplane.selectors``); a device
    that never reported a profile has every figure 0 and every text "" (matching only ``!=``
    and ``<``-style terms)."""
    profile = profile or {}
    interp = profile.get("interpreter") or {}
    hclass = hardware_class(profile) if profile else None
    return {
        "class": (hclass.key, hclass.name) if hclass else (),
        "arch": str(profile.get("arch") or ""),
        "interpreter": str(interp.get("name") or ""),
        "interpreter_version": str(interp.get("version") or ""),
        "os": str(profile.get("os") or ""),
        "delegate": tuple(str(d) for d in profile.get("delegates") or ()),
        "ram_bytes": _int(profile.get("ram_bytes")),
        "ram_available_bytes": _int(profile.get("ram_available_bytes")),
        "storage_free_bytes": _int(profile.get("storage_free_bytes")),
        "cpu_cores": _int(profile.get("cpu_cores")),
    }
