"""``model push|list|show`` against a real gRPC server with a canned AdminService."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.cli.connection import ClientSettings
from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]

MiB = 1024 * 1024


def _model_file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "face.tflite"
    path.write_bytes(os.urandom(size))
    return path


def _pushed_version(name: str = "face", version: str = "1.2.0",
                    status: str = "pending") -> pb.ModelVersion:
    return pb.ModelVersion(
        name=name, version=version, status=status, sha256="ab" * 32, size=2 * MiB,
        inputs=[pb.TensorSpec(name="input", shape=[1, 4], dtype="float32")],
        outputs=[pb.TensorSpec(name="scores", shape=[1, 2], dtype="float32")],
        created_at=Timestamp(seconds=1714564800),
        variants=[pb.Variant(kind="float32", sha256="ab" * 32, size=2 * MiB, status="ready")],
    )


def test_push_streams_the_file_in_chunks_after_a_header(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    model = _model_file(tmp_path, 2 * MiB + 12345)
    admin_server.service.reply("PushModel", _pushed_version())
    result = cli("model", "push", str(model), "--name", "face", "--version", "1.2.0",
                 "-o", "json")
    assert result.code == 0, result.err
    push = admin_server.service.push
    expected_sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert push.header_was_first
    assert (push.header.name, push.header.version) == ("face", "1.2.0")
    assert (push.header.size, push.header.sha256) == (model.stat().st_size, expected_sha)
    assert (push.header.calibration_size, push.calibration) == (0, b"")
    assert push.chunk_sizes == [MiB, MiB, 12345]
    assert push.sha256 == expected_sha  # the server re-hashed exactly the file's bytes
    doc = result.json()
    assert (doc["name"], doc["version"], doc["status"]) == ("face", "1.2.0", "pending")


def test_push_chunk_size_follows_the_client_settings(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    model = _model_file(tmp_path, 10_000)
    admin_server.service.reply("PushModel", _pushed_version())
    settings = ClientSettings(chunk_bytes=4096)
    result = cli("model", "push", str(model), "--name", "face", "--version", "1.2.0",
                 settings=settings)
    assert result.code == 0, result.err
    assert admin_server.service.push.chunk_sizes == [4096, 4096, 1808]


def test_push_sends_a_valid_calibration_npz(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    model = _model_file(tmp_path, 1000)
    samples = np.random.default_rng(0).random((8, 1, 4), dtype=np.float32)
    calibration = tmp_path / "calib.npz"
    np.savez(calibration, input=samples)
    admin_server.service.reply("PushModel", _pushed_version())
    result = cli("model", "push", str(model), "--name", "face", "--version", "1.2.0",
                 "--calibration", str(calibration))
    assert result.code == 0, result.err
    push = admin_server.service.push
    assert push.header.calibration_size == len(push.calibration) == calibration.stat().st_size
    assert push.header.calibration_sha256 == hashlib.sha256(push.calibration).hexdigest()
    received = np.load(io.BytesIO(push.calibration))
    np.testing.assert_array_equal(received["input"], samples)


def test_push_table_output_and_note_about_pending_variants(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    admin_server.service.reply("PushModel", _pushed_version())
    result = cli("model", "push", str(_model_file(tmp_path, 100)), "--name", "face",
                 "--version", "1.2.0")
    assert result.code == 0
    assert "model:       face:1.2.0" in result.out
    assert "2.0 MiB (2097152 bytes)" in result.out
    assert "edgefleet model show face:1.2.0" in result.err


def test_push_of_a_missing_file_fails_before_connecting(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    result = cli("model", "push", str(tmp_path / "nope.tflite"), "--name", "face",
                 "--version", "1")
    assert result.code == 6
    assert f"model file {tmp_path / 'nope.tflite'} does not exist" in result.err
    assert admin_server.service.calls("PushModel") == 0


def test_push_of_a_directory_is_refused(cli: Runner, tmp_path: Path) -> None:
    result = cli("model", "push", str(tmp_path), "--name", "face", "--version", "1")
    assert result.code == 6
    assert "is not a regular file" in result.err


def test_push_of_an_empty_file_is_refused(cli: Runner, tmp_path: Path) -> None:
    empty = tmp_path / "empty.tflite"
    empty.touch()
    result = cli("model", "push", str(empty), "--name", "face", "--version", "1")
    assert result.code == 6
    assert "is empty" in result.err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_push_of_an_unreadable_file_is_refused(cli: Runner, tmp_path: Path) -> None:
    model = _model_file(tmp_path, 10)
    model.chmod(0)
    result = cli("model", "push", str(model), "--name", "face", "--version", "1")
    assert result.code == 6
    assert "cannot read model file" in result.err


@pytest.mark.parametrize(
    ("make", "complaint"),
    [
        (lambda f: f.write(b"not a zip"), "is not a valid .npz archive"),
        (lambda f: np.save(f, np.zeros(3)), "is a single array, not an .npz archive"),
        (lambda f: np.savez(f), "holds no arrays"),
        (lambda f: np.savez(f, input=np.array([{"a": 1}], dtype=object)),
         "is not a valid .npz archive"),
    ],
    ids=["text-file", "npy-array", "empty-npz", "pickled-object-array"],
)
def test_push_with_an_invalid_calibration_file_is_refused_and_nothing_is_sent(
    cli: Runner, admin_server: Any, tmp_path: Path, make: Callable[[Any], Any], complaint: str
) -> None:
    calibration = tmp_path / "calib.npz"
    with calibration.open("wb") as f:  # numpy appends no suffix when given a file object
        make(f)
    result = cli("model", "push", str(_model_file(tmp_path, 10)), "--name", "face",
                 "--version", "1", "--calibration", str(calibration))
    assert result.code == 6
    assert complaint in result.err
    assert admin_server.service.calls("PushModel") == 0


def test_push_with_a_missing_calibration_file_is_refused(cli: Runner, tmp_path: Path) -> None:
    result = cli("model", "push", str(_model_file(tmp_path, 10)), "--name", "face",
                 "--version", "1", "--calibration", str(tmp_path / "calib.npz"))
    assert result.code == 6
    assert "calibration file" in result.err and "does not exist" in result.err


def test_push_refused_by_the_server_shows_its_reason(
    cli: Runner, admin_server: Any, tmp_path: Path
) -> None:
    admin_server.service.fail("PushModel", grpc.StatusCode.INVALID_ARGUMENT,
                              "not a TFLite flatbuffer: bad magic")
    result = cli("model", "push", str(_model_file(tmp_path, 3 * MiB)), "--name", "face",
                 "--version", "1", "-o", "json")
    assert result.code == 6
    assert "invalid input: not a TFLite flatbuffer: bad magic" in result.err
    assert result.out == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_push_draws_a_progress_bar_on_a_terminals_stderr_only(
    cli: Runner, admin_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("PushModel", _pushed_version())
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    result = cli("model", "push", str(_model_file(tmp_path, 2 * MiB)), "--name", "face",
                 "--version", "1.2.0")
    assert result.code == 0
    assert "face:1.2.0" in terminal.getvalue()
    assert "\x1b[" not in result.out  # stdout stays plain


def test_push_under_json_draws_no_progress_even_on_a_terminal(
    cli: Runner, admin_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("PushModel", _pushed_version(status="ready"))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    result = cli("model", "push", str(_model_file(tmp_path, 2 * MiB)), "--name", "face",
                 "--version", "1.2.0", "-o", "json")
    assert result.code == 0
    assert terminal.getvalue() == ""
    assert result.json()["status"] == "ready"


def test_model_list_json_is_one_document(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse(
        models=[_pushed_version(), _pushed_version(version="1.3.0", status="ready")]))
    result = cli("model", "list", "-o", "json")
    assert result.code == 0
    doc = result.json()
    assert [(m["name"], m["version"]) for m in doc["models"]] == [
        ("face", "1.2.0"), ("face", "1.3.0")]


def test_model_list_table(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse(models=[_pushed_version()]))
    lines = cli("model", "list").out.splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "STATUS", "SIZE", "VARIANTS", "READY",
                                "CREATED"]
    assert lines[1].split() == ["face", "1.2.0", "pending", "2.0", "MiB", "float32",
                                "2024-05-01T12:00:00Z"]


def test_model_show_asks_for_the_named_version(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetModel", _pushed_version(status="ready"))
    result = cli("model", "show", "face:1.2.0", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["GetModel"][0]
    assert (request.name, request.version) == ("face", "1.2.0")
    doc = json.loads(result.out)
    assert doc["variants"][0] == {
        "kind": "float32", "status": "ready", "sha256": "ab" * 32, "size": 2 * MiB,
        "min_runtime": None, "latency_ms": None, "measured_with": None, "failure": None,
        "inputs": [], "outputs": [], "measurements": [], "golden": None, "manifest": None}


def test_model_show_without_version_asks_for_the_newest(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("GetModel", _pushed_version())
    result = cli("model", "show", "face")
    assert result.code == 0
    assert admin_server.service.requests["GetModel"][0].version == ""
    assert "inputs:" in result.out and "variants:" in result.out


def test_model_show_of_an_unknown_model_exits_5(cli: Runner, admin_server: Any) -> None:
    admin_server.service.fail("GetModel", grpc.StatusCode.NOT_FOUND, "no model face:9")
    result = cli("model", "show", "face:9")
    assert result.code == 5
    assert "not found: no model face:9" in result.err
