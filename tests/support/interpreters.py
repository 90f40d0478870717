"""Which TFLite interpreters a test run has: tflite-runtime exactly where pyproject installs it.

tflite-runtime 2.14 (the devices' usual interpreter) has wheels only for Linux and CPython <= 3.11,
so on 3.12 and newer the extras install ai-edge-litert alone. Tests that run a model in
tflite-runtime skip there with this reason; where it can be installed a missing one still fails.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import pytest

# The marker pyproject puts on tflite-runtime: python_version < '3.12' and sys_platform == 'linux'.
TFLITE_RUNTIME = sys.version_info < (3, 12) and sys.platform == "linux"

needs_tflite_runtime = pytest.mark.skipif(
    not TFLITE_RUNTIME,
    reason="tflite-runtime 2.14 has wheels only for Linux with Python <= 3.11 (this is Python "
           f"{sys.version_info[0]}.{sys.version_info[1]} on {sys.platform}); ai-edge-litert is "
           "the interpreter here",
)


def each_interpreter(names: Iterable[str]) -> list[Any]:
    """``names`` as ``parametrize`` values, tflite-runtime marked ``needs_tflite_runtime``."""
    return [pytest.param(name, marks=needs_tflite_runtime) if name == "tflite-runtime" else name
            for name in names]
