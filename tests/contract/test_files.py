"""protos.contract.files: the one crash-safe writer both sides use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from protos.contract.files import replace_atomically


def test_replace_leaves_no_temp_files_and_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    replace_atomically(target, b"old")
    replace_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_the_file_never_has_a_wider_mode_than_asked(tmp_path: Path) -> None:
    target = tmp_path / "credential.json"
    replace_atomically(target, b"secret", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    """Input tried: data that is not bytes, so the write fails after the temp file exists."""
    target = tmp_path / "state.json"
    replace_atomically(target, b"old")
    with pytest.raises(TypeError):
        replace_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]
