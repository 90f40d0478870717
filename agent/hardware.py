"""What this device is: a hardware profile detected from the OS, overridable field by field.

The profile is a JSON-shaped dict with the ``pb.HardwareProfile`` field names (docs/cli.md);
fields given in ``--hardware-profile FILE.json`` win over detection. Detection never fails: a
field it cannot read is left empty rather than guessed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from agent.errors import ConfigurationError
from agent.runtime import InterpreterInfo
from protos import edgefleet_pb2 as pb

# CPU features that matter to TFLite kernels; everything else in /proc/cpuinfo is noise here.
RELEVANT_CPU_FLAGS = (
    "neon", "asimd", "asimddp", "asimdhp", "sve", "sve2", "i8mm", "bf16",
    "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni",
)


def detect_hardware(data_dir: Path, interpreter: InterpreterInfo) -> dict[str, Any]:
    """Detect the profile of the machine this runs on."""
    cpuinfo = _read_text("/proc/cpuinfo")
    meminfo = _meminfo(_read_text("/proc/meminfo"))
    try:
        storage_free = shutil.disk_usage(data_dir).free
    except OSError:
        storage_free = 0
    return {
        "arch": platform.machine(),
        "cpu_model": _cpu_model(cpuinfo) or platform.processor(),
        "cpu_cores": os.cpu_count() or 0,
        "cpu_flags": _cpu_flags(cpuinfo),
        "ram_bytes": meminfo.get("MemTotal", 0),
        "ram_available_bytes": meminfo.get("MemAvailable", 0),
        "storage_free_bytes": storage_free,
        "os": platform.system().lower(),
        "kernel": platform.release(),
        "interpreter": {"name": interpreter.name, "version": interpreter.version},
        # Both interpreters apply XNNPACK to float models by default.
        "delegates": ["xnnpack"],
    }


def load_hardware_overrides(path: Path | str) -> dict[str, Any]:
    """Fields from a ``--hardware-profile`` JSON file. Raises ConfigurationError."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read hardware profile {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigurationError(f"hardware profile {path} must be a JSON object")
    to_proto(doc)   # refuse unknown fields and wrong types now, not at the first sync
    return doc


def hardware_profile(
    data_dir: Path, interpreter: InterpreterInfo, overrides: dict[str, Any] | None = None
) -> pb.HardwareProfile:
    """Detected profile with ``overrides`` applied over it, as the proto message."""
    return to_proto({**detect_hardware(data_dir, interpreter), **(overrides or {})})


def to_proto(profile: dict[str, Any]) -> pb.HardwareProfile:
    """Raises ConfigurationError naming the field when ``profile`` does not fit the message."""
    try:
        return json_format.ParseDict(profile, pb.HardwareProfile())
    except json_format.ParseError as exc:
        raise ConfigurationError(f"invalid hardware profile: {exc}") from exc


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_values(cpuinfo: str, *keys: str) -> list[str]:
    values = []
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in keys:
            values.append(value.strip())
    return values


def _cpu_model(cpuinfo: str) -> str:
    found = _cpuinfo_values(cpuinfo, "model name", "Model", "Hardware", "cpu model")
    return found[0] if found else ""


def _cpu_flags(cpuinfo: str) -> list[str]:
    present: set[str] = set()
    for value in _cpuinfo_values(cpuinfo, "flags", "Features"):
        present.update(value.split())
    if "asimd" in present:   # aarch64 reports NEON as "asimd"
        present.add("neon")
    return [flag for flag in RELEVANT_CPU_FLAGS if flag in present]


def _meminfo(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values
