"""The TFLite interpreters the fleet runs: their names, how to import them, which one is used.

A device reports its interpreter by ``name`` (a key of ``INTERPRETERS``) and version; the control
plane measures variants in each of them. When both are installed the agent uses the first of
``PREFERENCE`` it can import, and so does any "auto" choice on the control plane: the devices'
usual interpreter first (tflite-runtime), ai-edge-litert where tflite-runtime has no wheel
(Python 3.12 and newer).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class InterpreterPackage:
    name: str           # as hardware profiles and reports spell it
    module: str         # the module holding ``Interpreter``
    distribution: str   # the PyPI distribution whose version is reported


INTERPRETERS: dict[str, InterpreterPackage] = {
    p.name: p for p in (
        InterpreterPackage("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
        InterpreterPackage("ai-edge-litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    )
}
PREFERENCE: tuple[str, ...] = ("tflite-runtime", "ai-edge-litert")

# ``min_runtime`` is a TensorFlow Lite release number. tflite-runtime uses that series;
# ai-edge-litert numbers its own, and every release of it was cut after TensorFlow 2.18 (LiteRT
# is TFLite renamed), so its kernels are at least 2.18's. Conservative on purpose.
_TFLITE_EQUIVALENT = {"ai-edge-litert": "2.18.0"}


class InterpreterMissing(ImportError):
    """The interpreter asked for (or every one) cannot be imported here."""


@dataclass(frozen=True)
class LoadedInterpreter:
    name: str
    version: str
    cls: Any            # the ``Interpreter`` class


def import_interpreter(name: str | None = None) -> LoadedInterpreter:
    """The named interpreter, or the first of ``PREFERENCE`` that imports when ``name`` is None.

    Raises ValueError for an unknown name, InterpreterMissing when none can be imported (the
    message lists each import failure and what to install).
    """
    if name is not None and name not in INTERPRETERS:
        raise ValueError(f"unknown interpreter {name!r}: use one of {', '.join(INTERPRETERS)}")
    missing = []
    for candidate in [name] if name else PREFERENCE:
        package = INTERPRETERS[candidate]
        try:
            module = importlib.import_module(package.module)
        except ImportError as exc:
            missing.append(f"{candidate} ({exc})")
            continue
        return LoadedInterpreter(candidate, _version(package), module.Interpreter)
    raise InterpreterMissing(
        "no TFLite interpreter is importable: " + "; ".join(missing)
        + ". Install tflite-runtime (Python 3.11) or ai-edge-litert: pip install 'edgefleet[agent]'"
    )


def available() -> list[str]:
    """Names of the interpreters importable here, in ``PREFERENCE`` order."""
    found = []
    for name in PREFERENCE:
        try:
            import_interpreter(name)
        except InterpreterMissing:
            continue
        found.append(name)
    return found


def installed_versions() -> dict[str, str]:
    """``{name: version}`` of the interpreters installed here, in ``PREFERENCE`` order, found
    without importing them: a process that runs models in children (the control plane) keeps
    both TFLite builds out of its own address space."""
    found = {}
    for name in PREFERENCE:
        package = INTERPRETERS[name]
        try:
            spec = importlib.util.find_spec(package.module.split(".")[0])
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        try:
            found[name] = importlib.metadata.version(package.distribution)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def tflite_equivalent(name: str, version: str) -> str:
    """The TensorFlow Lite release whose kernels interpreter ``name`` ``version`` has at least
    ("" stays "": unknown)."""
    return _TFLITE_EQUIVALENT.get(name, version) if version else version


def _version(package: InterpreterPackage) -> str:
    try:
        return importlib.metadata.version(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        top = importlib.import_module(package.module.split(".")[0])
        return str(getattr(top, "__version__", "unknown"))
