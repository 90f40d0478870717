"""Every `... list` command follows next_page_token to the last page and prints one document
with every item, as the CLI contract's documents always were (a real gRPC server with a canned
AdminService answering page by page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protos import edgefleet_pb2 as pb

Runner = Callable[..., Any]

# command, RPC, response type, repeated field, one item by index, the id of an item in its doc
LISTINGS = [
    (("token", "list"), "ListTokens", pb.ListTokensResponse, "tokens",
     lambda i: pb.OperatorToken(id=f"t{i}", role="viewer")),
    (("model", "list"), "ListModels", pb.ListModelsResponse, "models",
     lambda i: pb.ModelVersion(name="m", version=f"{i}.0.0", status="ready")),
    (("device", "list", "--selector", "site=berlin"), "ListDevices", pb.ListDevicesResponse,
     "devices", lambda i: pb.Device(id=f"d{i}", name=f"cam-{i}")),
    (("rollout", "list"), "ListRollouts", pb.ListRolloutsResponse, "rollouts",
     lambda i: pb.Rollout(id=f"r{i}", model="m", version="1.0.0", state="running")),
]


def _key(doc: dict[str, Any]) -> str:
    return str(doc.get("id") or doc["version"])


@pytest.mark.parametrize(("argv", "method", "response", "field", "item"), LISTINGS,
                         ids=[m for _, m, *_ in LISTINGS])
def test_a_list_command_follows_every_page_and_prints_one_document(
    cli: Runner, admin_server: Any, argv: tuple[str, ...], method: str, response: Any,
    field: str, item: Callable[[int], Any],
) -> None:
    """Input tried: three pages (2, 2 and 1 items, tokens "p2" and "p3", the last without
    one), under -o json and as a table."""
    pages = [response(**{field: [item(0), item(1)]}, next_page_token="p2"),
             response(**{field: [item(2), item(3)]}, next_page_token="p3"),
             response(**{field: [item(4)]})]
    admin_server.service.reply(method, *pages)
    result = cli(*argv, "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    expected = [_key(d) for d in doc[field]]
    assert len(expected) == 5 and len(set(expected)) == 5
    sent = admin_server.service.requests[method]
    assert [r.page_token for r in sent] == ["", "p2", "p3"]
    if method == "ListDevices":
        assert {r.selector for r in sent} == {"site=berlin"}
    admin_server.service.reply(method, *pages)
    table = cli(*argv)
    assert table.code == 0 and len(table.out.strip().splitlines()) == 1 + 5


def test_a_server_answering_the_same_page_again_ends_the_command(
    cli: Runner, admin_server: Any
) -> None:
    """Input tried: a (broken) server whose every ListTokens answer says next_page_token "p"."""
    admin_server.service.reply("ListTokens", pb.ListTokensResponse(
        tokens=[pb.OperatorToken(id="t", role="viewer")], next_page_token="p"))
    result = cli("token", "list", "-o", "json")
    assert result.code == 1 and result.out == ""
    assert "same page again" in result.err
    assert admin_server.service.calls("ListTokens") == 2


def test_a_failure_on_a_later_page_prints_no_document(cli: Runner, admin_server: Any) -> None:
    """Input tried: ListDevices answering a first page, then UNAVAILABLE: stdout stays empty
    (never half a document) and the exit code says unreachable."""
    import grpc

    admin_server.service.reply(
        "ListDevices", pb.ListDevicesResponse(devices=[pb.Device(id="d")], next_page_token="p2"),
        admin_server.service.aborting(grpc.StatusCode.UNAVAILABLE, "going away"))
    result = cli("device", "list", "-o", "json")
    assert result.code == 3 and result.out == ""
