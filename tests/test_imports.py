"""Every module imports on its own (no import cycle hides behind the order modules happen to be
imported in), and the two sides never import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PROBE = r"""
import importlib, pkgutil, sys
failures = []
names = []
for package in ("protos", "agent", "controlplane"):
    top = importlib.import_module(package)
    names += [package] + [m.name for m in pkgutil.walk_packages(top.__path__, package + ".")
                          if not m.name.endswith(".__main__")]   # those run a CLI
for name in names:
    # prometheus_client too: its registry is process-global and refuses a module's metrics twice
    fresh = ("protos", "agent", "controlplane", "prometheus_client")
    for loaded in [m for m in sys.modules if m.split(".")[0] in fresh]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failures.append(f"{name}: {type(exc).__name__}: {exc}")
print("\n".join(failures))
print(f"checked {len(names)} modules", file=sys.stderr)
"""


def test_every_module_imports_first_without_a_cycle() -> None:
    """Input tried: each module of protos, agent and controlplane imported first, alone, in a
    fresh module table (a cycle fails when its other end is imported first)."""
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "", done.stdout
    assert "checked" in done.stderr
