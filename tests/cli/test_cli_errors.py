"""Failures over a real gRPC connection: status codes -> exit codes and actionable messages,
the token lookup order, and the unreachable server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


@pytest.mark.parametrize(
    ("code", "exit_code", "prefix"),
    [
        (grpc.StatusCode.NOT_FOUND, 5, "not found: "),
        (grpc.StatusCode.INVALID_ARGUMENT, 6, "invalid input: "),
        (grpc.StatusCode.OUT_OF_RANGE, 6, "invalid input: "),
        (grpc.StatusCode.ALREADY_EXISTS, 6, "already exists: "),
        (grpc.StatusCode.FAILED_PRECONDITION, 6, "not possible now: "),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 6, "over a limit: "),
        (grpc.StatusCode.UNAUTHENTICATED, 4, "the control plane rejected the token from --token"),
        (grpc.StatusCode.PERMISSION_DENIED, 4, "permission denied: `model list` needs a viewer"),
        (grpc.StatusCode.UNAVAILABLE, 3, "cannot reach the control plane at 127.0.0.1:"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 3, "cannot reach the control plane at 127.0.0.1:"),
        (grpc.StatusCode.INTERNAL, 1, "the control plane failed (INTERNAL)"),
        (grpc.StatusCode.UNKNOWN, 1, "the control plane failed (UNKNOWN)"),
        (grpc.StatusCode.UNIMPLEMENTED, 1, "does not support `model list`"),
    ],
)
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_status_codes_map_to_exit_codes_and_keep_the_servers_details(
    cli: Runner, admin_server: Any, code: grpc.StatusCode, exit_code: int, prefix: str, fmt: str
) -> None:
    admin_server.service.fail("ListModels", code, "details from the server")
    result = cli("model", "list", "-o", fmt)
    assert result.code == exit_code
    assert result.out == ""  # errors never land on stdout, even under -o json
    assert result.err.startswith("edgefleet: error: ")
    assert prefix in result.err
    assert "details from the server" in result.err
    assert "Traceback" not in result.err


def test_unreachable_server_exits_3_with_what_to_do(run: Runner, free_address: str) -> None:
    result = run("model", "list", "--server", free_address, "--token", "t0k")
    assert result.code == 3
    assert f"cannot reach the control plane at {free_address}" in result.err
    assert "is `edgefleet server` running? set --server/EDGEFLEET_SERVER" in result.err
    assert result.out == ""


def test_server_address_comes_from_the_environment_when_no_flag(
    run: Runner, admin_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    monkeypatch.setenv("EDGEFLEET_SERVER", admin_server.address)
    assert run("model", "list", "--token", "t0k").code == 0
    assert admin_server.service.calls("ListModels") == 1


def test_permission_denied_names_the_role_the_command_needs(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.fail("CreateToken", grpc.StatusCode.PERMISSION_DENIED,
                              "role operator may not call CreateToken")
    result = cli("token", "create", "--role", "viewer")
    assert result.code == 4
    assert "`token create` needs an admin token" in result.err
    assert "role operator may not call CreateToken" in result.err


def test_token_is_sent_as_bearer_metadata(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    assert cli("model", "list").code == 0
    assert admin_server.service.bearers == ["Bearer t0k"]


def test_token_from_environment(
    run: Runner, admin_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    monkeypatch.setenv("EDGEFLEET_TOKEN", "from-env")
    assert run("model", "list", "--server", admin_server.address).code == 0
    assert admin_server.service.bearers == ["Bearer from-env"]


def test_token_flag_wins_over_environment(
    run: Runner, admin_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    monkeypatch.setenv("EDGEFLEET_TOKEN", "from-env")
    assert run("model", "list", "--server", admin_server.address, "--token", "flag").code == 0
    assert admin_server.service.bearers == ["Bearer flag"]


def test_token_from_the_default_data_dir_file(
    run: Runner, admin_server: Any, tmp_path: Path
) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    (tmp_path / "edgefleet-data").mkdir()
    (tmp_path / "edgefleet-data" / "admin-token").write_text("from-file\n")
    assert run("model", "list", "--server", admin_server.address).code == 0
    assert admin_server.service.bearers == ["Bearer from-file"]


def test_token_from_the_data_dir_in_the_environment(
    run: Runner, admin_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_server.service.reply("ListModels", pb.ListModelsResponse())
    data_dir = tmp_path / "elsewhere"
    data_dir.mkdir()
    (data_dir / "admin-token").write_text("from-data-dir")
    monkeypatch.setenv("EDGEFLEET_DATA_DIR", str(data_dir))
    assert run("model", "list", "--server", admin_server.address).code == 0
    assert admin_server.service.bearers == ["Bearer from-data-dir"]


def test_rejected_token_from_a_file_says_which_file(
    run: Runner, admin_server: Any, tmp_path: Path
) -> None:
    admin_server.service.fail("ListModels", grpc.StatusCode.UNAUTHENTICATED, "unknown token")
    (tmp_path / "edgefleet-data").mkdir()
    (tmp_path / "edgefleet-data" / "admin-token").write_text("stale")
    result = run("model", "list", "--server", admin_server.address)
    assert result.code == 4
    assert "rejected the token from edgefleet-data/admin-token: unknown token" in result.err
    assert "stale" not in result.err  # the token itself is never echoed


def test_no_token_anywhere_exits_4_before_calling_the_server(
    run: Runner, admin_server: Any
) -> None:
    result = run("model", "list", "--server", admin_server.address)
    assert result.code == 4
    assert "no token in --token, EDGEFLEET_TOKEN or edgefleet-data/admin-token: " \
        "`model list` needs a viewer, operator or admin token; pass one with --token" in result.err
    assert "edgefleet-data/admin-token" in result.err
    assert admin_server.service.calls("ListModels") == 0


def test_empty_token_file_is_refused_with_its_path(
    run: Runner, admin_server: Any, tmp_path: Path
) -> None:
    (tmp_path / "edgefleet-data").mkdir()
    (tmp_path / "edgefleet-data" / "admin-token").write_text("\n")
    result = run("model", "list", "--server", admin_server.address)
    assert result.code == 4
    assert "the token file edgefleet-data/admin-token is empty" in result.err
