"""The list RPCs page over a real socket (M2): page sizes, tokens, every item once, and pages
that fit the message limit whatever their items weigh. The server here runs with a 256 KiB
message limit, so a page of heavy devices has to stop early."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from controlplane import modelgen
from controlplane.config import Settings
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import abort_once_started, push, wait_ready

LIMIT = 256 * 1024


@pytest.fixture
def server_settings(server_settings: Settings) -> Settings:
    return server_settings.replace(grpc_max_message_bytes=LIMIT)


def _every_page(call: Callable[[str], Any], field: str) -> list[Any]:
    """Every response of a listing, following next_page_token."""
    responses, token = [], ""
    while True:
        response = call(token)
        responses.append(response)
        if not (token := response.next_page_token):
            return responses
        assert len(responses) < 1000, "the listing never ends"


def _enroll_many(server: RunningServer, n: int, *, labels: dict[str, str],
                 hardware: pb.HardwareProfile | None = None) -> list[str]:
    md = bearer(server.admin_token)
    token = server.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(labels=labels, uses=n), metadata=md).token
    return [server.device().Enroll(pb.EnrollRequest(name=f"dev-{i:03d}",
                                                    hardware=hardware or pb.HardwareProfile()),
                                   metadata=bearer(token)).device_id for i in range(n)]


def test_heavy_devices_come_in_pages_that_fit_the_message_limit(server: RunningServer) -> None:
    """Input tried: 60 devices whose hardware profiles are some 12 KB each (720 KB in all),
    listed with page_size 1000 under a 256 KiB message limit, and with `--selector` matching
    every other one of them."""
    flags = [f"flag{i:05d}" for i in range(1100)]  # about 14 KB as JSON, 12 KB as protobuf
    heavy = pb.HardwareProfile(arch="x86_64", cpu_flags=flags)
    site_a = _enroll_many(server, 30, labels={"site": "a"}, hardware=heavy)
    _enroll_many(server, 30, labels={"site": "b"}, hardware=heavy)
    admin, md = server.admin(), bearer(server.admin_token)
    for selector, expected in (("", 60), ("site=a", 30)):
        responses = _every_page(lambda t, sel=selector: admin.ListDevices(
            pb.ListDevicesRequest(selector=sel, page_size=1000, page_token=t), metadata=md),
            "devices")
        assert len(responses) >= 2  # 30 or 60 devices of 12 KB: 360 or 720 KB
        assert all(r.ByteSize() <= LIMIT for r in responses)
        ids = [d.id for r in responses for d in r.devices]
        assert len(ids) == len(set(ids)) == expected
    assert set(site_a) <= set(ids)


def test_devices_and_tokens_come_in_pages_of_the_size_asked_for(server: RunningServer) -> None:
    """Input tried: 7 devices and 7 operator tokens (the admin token among them) listed with
    page_size 3, and with page_size 0 (the default, 100)."""
    admin, md = server.admin(), bearer(server.admin_token)
    devices = _enroll_many(server, 7, labels={"site": "p"})
    for i in range(6):
        admin.CreateToken(pb.CreateTokenRequest(role="viewer", description=f"t{i}"), metadata=md)
    listed = _every_page(lambda t: admin.ListDevices(
        pb.ListDevicesRequest(page_size=3, page_token=t), metadata=md), "devices")
    assert [len(r.devices) for r in listed] == [3, 3, 1]
    assert [d.id for r in listed for d in r.devices] == devices  # by name: dev-000, dev-001 ...
    tokens = _every_page(lambda t: admin.ListTokens(
        pb.ListTokensRequest(page_size=3, page_token=t), metadata=md), "tokens")
    assert [len(r.tokens) for r in tokens] == [3, 3, 1]
    assert len(admin.ListDevices(pb.ListDevicesRequest(), metadata=md).devices) == 7
    assert not admin.ListDevices(pb.ListDevicesRequest(), metadata=md).next_page_token


def test_models_and_rollouts_come_in_pages(server: RunningServer) -> None:
    """Input tried: 3 versions of a model and 3 rollouts of them, listed with page_size 2."""
    admin, md = server.admin(), bearer(server.admin_token)
    _enroll_many(server, 1, labels={"site": "r"})
    for i in range(3):
        push(server, "cnn", f"{i}.0.0", modelgen.build_cnn(seed=i))
    for i in range(3):
        wait_ready(server, "cnn", f"{i}.0.0")
        created = admin.CreateRollout(pb.CreateRolloutRequest(
            model="cnn", version=f"{i}.0.0", selector="site=r"), metadata=md)
        abort_once_started(server, created.id)   # the device is free for the next one
    models = _every_page(lambda t: admin.ListModels(
        pb.ListModelsRequest(page_size=2, page_token=t), metadata=md), "models")
    assert [[m.version for m in r.models] for r in models] == [["0.0.0", "1.0.0"], ["2.0.0"]]
    rollouts = _every_page(lambda t: admin.ListRollouts(
        pb.ListRolloutsRequest(page_size=2, page_token=t), metadata=md), "rollouts")
    assert [[r.version for r in page.rollouts] for page in rollouts] == \
        [["2.0.0", "1.0.0"], ["0.0.0"]]  # newest first


def test_a_page_size_above_the_maximum_or_a_forged_token_is_invalid_argument(
    server: RunningServer,
) -> None:
    """Input tried: page_size 1001 (max_page_size 1000) and page_token "forged" on each list
    RPC, and ListDevices' token sent to ListTokens."""
    admin, md = server.admin(), bearer(server.admin_token)
    _enroll_many(server, 2, labels={"site": "f"})
    device_token = admin.ListDevices(pb.ListDevicesRequest(page_size=1),
                                     metadata=md).next_page_token
    calls: list[tuple[Callable[..., Any], type]] = [
        (admin.ListTokens, pb.ListTokensRequest), (admin.ListModels, pb.ListModelsRequest),
        (admin.ListDevices, pb.ListDevicesRequest), (admin.ListRollouts, pb.ListRolloutsRequest),
    ]
    for rpc, request in calls:
        with pytest.raises(grpc.RpcError) as err:
            rpc(request(page_size=1001), metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_page_size" in (err.value.details() or "")
        for token in ("forged", device_token if request is not pb.ListDevicesRequest else "x"):
            with pytest.raises(grpc.RpcError) as err:
                rpc(request(page_token=token), metadata=md)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "not one this server issued" in (err.value.details() or "")
