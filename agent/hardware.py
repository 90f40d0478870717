"""What this device is: a hardware profile detected from the OS, overridable field by field.

The profile is a JSON-shaped dict with the ``pb.HardwareProfile`` field names (docs/cli.md);
fields given in ``--hardware-profile FILE.json`` win over detection. Detection never fails: a
field it cannot read is left empty rather than guessed.

Delegates: XNNPACK is built into both interpreters. An accelerator delegate is reported when its
library is found where the dynamic loader looks (``LD_LIBRARY_PATH``, then the system's library
directories): ``edgetpu`` for ``libedgetpu.so.1``, ``gpu`` for
``libtensorflowlite_gpu_delegate.so``. Finding the library is what is probed, not loading it (a
delegate library loads only with its device attached, and loading costs the device's memory).

``changed`` decides when the profile is worth reporting again: any field but the two that move
all the time (available RAM, free storage), or one of those two by more than
``VOLATILE_CHANGE`` of the figure last reported.
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
        "delegates": ["xnnpack", *probe_delegates()],
    }


# Accelerator delegates by the libraries that provide them (Linux names first).
DELEGATE_LIBRARIES: dict[str, tuple[str, ...]] = {
    "edgetpu": ("libedgetpu.so.1", "libedgetpu.1.dylib", "edgetpu.dll"),
    "gpu": ("libtensorflowlite_gpu_delegate.so",),
}
_SYSTEM_LIBRARY_DIRS = ("/usr/local/lib", "/usr/lib", "/lib", "/usr/lib64", "/lib64")
VOLATILE_FIELDS = ("ram_available_bytes", "storage_free_bytes")
VOLATILE_CHANGE = 0.10


def probe_delegates(search_path: str | None = None) -> list[str]:
    """The accelerator delegates whose library is installed, in ``DELEGATE_LIBRARIES`` order.
    ``search_path``: directories joined by ``os.pathsep`` (default ``$LD_LIBRARY_PATH`` and
    the system's library directories, with their multiarch subdirectories)."""
    dirs = _library_dirs(os.environ.get("LD_LIBRARY_PATH", "") if search_path is None
                         else search_path, system=search_path is None)
    return [name for name, files in DELEGATE_LIBRARIES.items()
            if any((d / f).is_file() for d in dirs for f in files)]


def _library_dirs(path: str, *, system: bool) -> list[Path]:
    dirs = [Path(p) for p in path.split(os.pathsep) if p]
    if system:
        for root in map(Path, _SYSTEM_LIBRARY_DIRS):
            dirs.append(root)
            if root.is_dir():   # /usr/lib/aarch64-linux-gnu and the like
                dirs.extend(sorted(root.glob(f"{platform.machine()}-*")))
    return dirs


def changed(reported: pb.HardwareProfile | None, current: pb.HardwareProfile) -> bool:
    """Whether ``current`` differs enough from the profile last ``reported`` to send again."""
    if reported is None:
        return True
    for name in VOLATILE_FIELDS:
        before, now = getattr(reported, name), getattr(current, name)
        if abs(now - before) > VOLATILE_CHANGE * max(before, 1):
            return True
    stable_before, stable_now = pb.HardwareProfile(), pb.HardwareProfile()
    stable_before.CopyFrom(reported)
    stable_now.CopyFrom(current)
    for message in (stable_before, stable_now):
        for name in VOLATILE_FIELDS:
            message.ClearField(name)
    return stable_before != stable_now


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
