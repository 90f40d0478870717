"""protos.contract.interpreters: one table of interpreters and one preference for both sides."""

from __future__ import annotations

import pytest

from protos.contract.interpreters import (
    INTERPRETERS,
    PREFERENCE,
    InterpreterMissing,
    available,
    import_interpreter,
    tflite_equivalent,
)


def test_every_preferred_interpreter_is_in_the_table() -> None:
    assert set(PREFERENCE) == set(INTERPRETERS)
    assert PREFERENCE[0] == "tflite-runtime"   # the devices' usual interpreter


def test_auto_takes_the_first_installed_interpreter_of_the_preference() -> None:
    installed = available()
    assert installed, "the test environment installs at least one interpreter"
    loaded = import_interpreter()
    assert loaded.name == installed[0]
    assert loaded.version and loaded.version != "unknown"
    assert callable(loaded.cls)


def test_an_unknown_interpreter_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown interpreter 'tensorflow'"):
        import_interpreter("tensorflow")


def test_a_missing_interpreter_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Input tried: an interpreter whose module cannot be imported (hidden from sys.modules)."""
    import sys

    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(InterpreterMissing, match="pip install"):
        import_interpreter("tflite-runtime")


def test_litert_counts_as_tflite_2_18_and_tflite_runtime_as_itself() -> None:
    assert tflite_equivalent("ai-edge-litert", "2.3.0") == "2.18.0"
    assert tflite_equivalent("tflite-runtime", "2.14.0") == "2.14.0"
    assert tflite_equivalent("tflite-runtime", "") == ""
