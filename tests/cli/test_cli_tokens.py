"""``token create`` and ``enroll-token create`` against a real gRPC server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]


def test_token_create_json_is_id_token_role(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateToken",
                               pb.CreateTokenResponse(id="t1", token="s3cret", role="operator"))
    result = cli("token", "create", "--role", "operator", "--description", "ci", "-o", "json")
    assert result.code == 0
    assert result.json() == {"id": "t1", "token": "s3cret", "role": "operator",
                             "expires_at": None}
    request = admin_server.service.requests["CreateToken"][0]
    assert (request.role, request.description, request.expires_in_seconds) == ("operator", "ci", 0)
    assert "shown only once" in result.err


def test_token_create_expires_sends_the_lifetime_and_shows_the_expiry(
        cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateToken", pb.CreateTokenResponse(
        id="t1", token="s3cret", role="viewer", expires_at=Timestamp(seconds=1714564800)))
    result = cli("token", "create", "--role", "viewer", "--expires", "30d", "-o", "json")
    assert result.code == 0
    assert admin_server.service.requests["CreateToken"][0].expires_in_seconds == 30 * 86400
    assert result.json()["expires_at"] == "2024-05-01T12:00:00Z"


def test_token_create_table_shows_the_token(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("CreateToken",
                               pb.CreateTokenResponse(id="t1", token="s3cret", role="admin"))
    result = cli("token", "create", "--role", "admin")
    assert result.out.splitlines() == ["id:         t1", "role:       admin",
                                       "token:      s3cret", "expires_at: never"]


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


def test_token_list_json_and_table_never_show_secrets(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("ListTokens", pb.ListTokensResponse(tokens=[
        pb.OperatorToken(id="a1", role="admin", description="created at first start",
                         created_at=Timestamp(seconds=1714564800)),
        pb.OperatorToken(id="o1", role="operator", description="ci", created_by="a1",
                         created_at=Timestamp(seconds=1714564900),
                         revoked_at=Timestamp(seconds=1714565000)),
    ]))
    doc = cli("token", "list", "-o", "json").json()
    assert doc == {"tokens": [
        {"id": "a1", "role": "admin", "description": "created at first start",
         "created_at": "2024-05-01T12:00:00Z", "created_by": None, "revoked_at": None,
         "expires_at": None},
        {"id": "o1", "role": "operator", "description": "ci",
         "created_at": "2024-05-01T12:01:40Z", "created_by": "a1",
         "revoked_at": "2024-05-01T12:03:20Z", "expires_at": None},
    ]}
    table = cli("token", "list").out.splitlines()
    assert table[0].split() == ["ID", "ROLE", "DESCRIPTION", "CREATED", "CREATED", "BY",
                                "EXPIRES", "REVOKED"]
    assert "never" in table[1]
    assert "2024-05-01T12:03:20Z" in table[2]


def test_token_revoke_sends_the_id_and_says_it_holds_everywhere(
    cli: Runner, admin_server: Any
) -> None:
    admin_server.service.reply("RevokeToken", pb.OperatorToken(
        id="o1", role="operator", revoked_at=Timestamp(seconds=1714565000)))
    result = cli("token", "revoke", "o1", "-o", "json")
    assert result.code == 0
    assert admin_server.service.requests["RevokeToken"][0].id == "o1"
    assert result.json()["revoked_at"] == "2024-05-01T12:03:20Z"
    assert "every server refuses it" in result.err


def test_revoking_the_last_admin_token_is_exit_6_with_the_way_out(
    cli: Runner, admin_server: Any
) -> None:
    """Input tried: revoking the only admin token (the server refuses: FAILED_PRECONDITION)."""
    admin_server.service.fail("RevokeToken", grpc.StatusCode.FAILED_PRECONDITION,
                              "a1 is the last admin token: create another with "
                              "`edgefleet token create --role admin` first")
    result = cli("token", "revoke", "a1")
    assert result.code == 6
    assert "token create --role admin" in result.err


def test_enroll_token_revoke(cli: Runner, admin_server: Any) -> None:
    admin_server.service.reply("RevokeEnrollmentToken", pb.RevokedEnrollmentToken(
        id="e1", uses_left=3, revoked_at=Timestamp(seconds=1714565000)))
    result = cli("enroll-token", "revoke", "e1", "-o", "json")
    assert result.json() == {"id": "e1", "uses_left": 3, "revoked_at": "2024-05-01T12:03:20Z"}
    assert admin_server.service.requests["RevokeEnrollmentToken"][0].id == "e1"
