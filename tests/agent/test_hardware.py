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


def test_delegates_are_reported_when_their_library_is_installed(tmp_path, monkeypatch):
    """Input tried: an empty library dir, then one holding libedgetpu.so.1, then also the GPU
    delegate's library, given as LD_LIBRARY_PATH as the dynamic loader reads it."""
    from agent.hardware import probe_delegates

    libs = tmp_path / "lib"
    libs.mkdir()
    assert probe_delegates(str(libs)) == []
    (libs / "libedgetpu.so.1").write_bytes(b"\x7fELF")
    assert probe_delegates(str(libs)) == ["edgetpu"]
    (libs / "libtensorflowlite_gpu_delegate.so").write_bytes(b"\x7fELF")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{libs}")
    assert list(hardware_profile(tmp_path, INFO).delegates) == ["xnnpack", "edgetpu", "gpu"]


def test_a_profile_is_sent_again_when_it_changed_enough():
    from agent.hardware import changed
    from protos import edgefleet_pb2 as pb

    base = pb.HardwareProfile(arch="aarch64", ram_bytes=4 * 2**30,
                              ram_available_bytes=1000 * 2**20, storage_free_bytes=10 * 2**30,
                              delegates=["xnnpack"])

    def with_(**fields):
        p = pb.HardwareProfile()
        p.CopyFrom(base)
        for name, value in fields.items():
            if isinstance(value, list):
                del getattr(p, name)[:]
                getattr(p, name).extend(value)
            elif isinstance(value, pb.InterpreterInfo):
                getattr(p, name).CopyFrom(value)
            else:
                setattr(p, name, value)
        return p

    assert changed(None, base)
    assert not changed(base, with_(ram_available_bytes=950 * 2**20))      # -5%: noise
    assert changed(base, with_(ram_available_bytes=800 * 2**20))          # -20%
    assert changed(base, with_(storage_free_bytes=1 * 2**30))             # the disk filled
    assert changed(base, with_(delegates=["xnnpack", "edgetpu"]))         # a TPU plugged in
    assert changed(base, with_(interpreter=pb.InterpreterInfo(name="ai-edge-litert")))
