"""``token create`` and ``enroll-token create`` against a real gRPC server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


def test_token_create_json_is_id_token_role(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateToken",
                               pb.CreateTokenResponse(id="t1", token="s3cret", role="operator"))
    result = cli("token", "create", "--role", "operator", "--description", "ci", "-o", "json")
    assert result.code == 0
    assert result.json() == {"id": "t1", "token": "s3cret", "role": "operator"}
    request = admin_server.service.requests["CreateToken"][0]
    assert (request.role, request.description) == ("operator", "ci")
    assert "shown only once" in result.err


def test_token_create_table_shows_the_token(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateToken",
                               pb.CreateTokenResponse(id="t1", token="s3cret", role="admin"))
    result = cli("token", "create", "--role", "admin")
    assert result.out.splitlines() == ["id:    t1", "role:  admin", "token: s3cret"]


def test_enroll_token_create_sends_labels_uses_and_lifetime(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("CreateEnrollmentToken", pb.CreateEnrollmentTokenResponse(
        id="e1", token="enr", uses=10, expires_at=Timestamp(seconds=1714564800),
        labels={"site": "berlin"}))
    result = cli("enroll-token", "create", "--labels", "site=berlin", "--uses", "10",
                 "--expires", "2h", "-o", "json")
    assert result.code == 0
    request = admin_server.service.requests["CreateEnrollmentToken"][0]
    assert (dict(request.labels), request.uses, request.expires_in_seconds) == (
        {"site": "berlin"}, 10, 7200)
    assert result.json() == {"id": "e1", "token": "enr", "uses": 10,
                             "expires_at": "2024-05-01T12:00:00Z", "labels": {"site": "berlin"}}
    assert f"--server {admin_server.address} --enroll-token" in result.err


def test_enroll_token_create_leaves_defaults_to_the_server(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("CreateEnrollmentToken",
                               pb.CreateEnrollmentTokenResponse(id="e1", token="enr", uses=1))
    result = cli("enroll-token", "create")
    assert result.code == 0
    request = admin_server.service.requests["CreateEnrollmentToken"][0]
    assert (dict(request.labels), request.uses, request.expires_in_seconds) == ({}, 0, 0)
    assert "token:      enr" in result.out
    assert "expires_at: -" in result.out
