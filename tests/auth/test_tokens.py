"""Token format and the authorisation table."""

from __future__ import annotations

import pytest

from controlplane.auth import tokens
from controlplane.auth.policy import POLICY, Principal, allowed
from protos import edgefleet_pb2 as pb


def test_minted_token_parses_back_and_secret_matches_only_its_hash() -> None:
    token_id, secret, token = tokens.mint("operator")
    parsed = tokens.parse(token)
    assert parsed == tokens.ParsedToken(kind="operator", id=token_id, secret=secret)
    assert tokens.secret_matches(secret, tokens.hash_secret(secret))
    assert not tokens.secret_matches(secret + "x", tokens.hash_secret(secret))


@pytest.mark.parametrize(
    "garbage",
    ["", "ef", "efx_a_b", "efo_", "efo_abc", "efo__secret", "Bearer efo_a_b", "x" * 600, "efo-a-b"],
)
def test_malformed_tokens_parse_to_none(garbage: str) -> None:
    """Input tried: empty, truncated, unknown kind, missing parts, oversized strings."""
    assert tokens.parse(garbage) is None


def test_every_rpc_in_the_contract_has_a_policy_rule() -> None:
    """Fail closed is the default; this catches an RPC added without deciding who may call it."""
    for svc in ("DeviceService", "AdminService"):
        for method in pb.DESCRIPTOR.services_by_name[svc].methods:
            assert f"/edgefleet.v1.{svc}/{method.name}" in POLICY, method.name


@pytest.mark.parametrize(
    ("method", "principal", "ok"),
    [
        ("/edgefleet.v1.AdminService/GetModel", Principal("operator", "t", "viewer"), True),
        ("/edgefleet.v1.AdminService/PushModel", Principal("operator", "t", "viewer"), False),
        ("/edgefleet.v1.AdminService/PushModel", Principal("operator", "t", "operator"), True),
        ("/edgefleet.v1.AdminService/CreateToken", Principal("operator", "t", "operator"), False),
        ("/edgefleet.v1.AdminService/CreateToken", Principal("operator", "t", "admin"), True),
        ("/edgefleet.v1.AdminService/ListDevices", Principal("device", "d"), False),
        ("/edgefleet.v1.DeviceService/Sync", Principal("operator", "t", "admin"), False),
        ("/edgefleet.v1.DeviceService/Sync", Principal("enrollment", "e"), False),
        ("/edgefleet.v1.DeviceService/Enroll", Principal("enrollment", "e"), True),
        ("/edgefleet.v1.DeviceService/Sync", Principal("device", "d"), True),
        ("/edgefleet.v1.AdminService/NoSuchMethod", Principal("operator", "t", "admin"), False),
    ],
)
def test_policy_decisions(method: str, principal: Principal, ok: bool) -> None:
    assert allowed(method, principal)[0] is ok
