"""Hardware profile: detection on this machine, overrides from --hardware-profile."""

from __future__ import annotations

import json

import pytest

from agent.errors import ConfigurationError
from agent.hardware import hardware_profile, load_hardware_overrides
from agent.runtime import InterpreterInfo

INFO = InterpreterInfo("tflite-runtime", "2.14.0")


def test_detection_reads_this_machine(tmp_path):
    profile = hardware_profile(tmp_path, INFO)
    assert profile.arch and profile.cpu_cores >= 1 and profile.os == "linux"
    assert profile.ram_bytes >= profile.ram_available_bytes > 0
    assert profile.storage_free_bytes > 0
    assert (profile.interpreter.name, profile.interpreter.version) == ("tflite-runtime", "2.14.0")
    assert list(profile.delegates) == ["xnnpack"]


def test_profile_file_fields_win_over_detection(tmp_path):
    path = tmp_path / "hw.json"
    path.write_text(json.dumps({"arch": "aarch64", "cpu_flags": ["neon"], "ram_bytes": 2**31,
                                "delegates": ["xnnpack", "edgetpu"]}))
    profile = hardware_profile(tmp_path, INFO, load_hardware_overrides(path))
    assert profile.arch == "aarch64" and list(profile.cpu_flags) == ["neon"]
    assert profile.ram_bytes == 2**31 and list(profile.delegates) == ["xnnpack", "edgetpu"]
    assert profile.cpu_cores >= 1   # not overridden: still detected


@pytest.mark.parametrize("content", ['{"gpu": "yes"}', '{"cpu_cores": "four"}', "[1]", "{"])
def test_profile_file_with_unknown_field_wrong_type_or_bad_json_is_refused(tmp_path, content):
    path = tmp_path / "hw.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError):
        load_hardware_overrides(path)
