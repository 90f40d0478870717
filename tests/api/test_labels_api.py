"""Labels and selectors over the wire: a value cannot smuggle in another label (L6), and a
selector of empty pairs cannot reach the whole fleet (L3)."""

from __future__ import annotations

import grpc
import pytest

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push, wait_ready


def _code(err: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    return err.value.code()  # type: ignore[attr-defined]


def test_a_comma_in_a_label_value_is_refused_and_changes_nothing(server: RunningServer) -> None:
    """Input tried: `device label` and `enroll-token create` with {"note": "ok,site=paris"} on a
    device labelled site=berlin."""
    device_id, _ = enroll(server, labels={"site": "berlin"})
    admin, auth = server.admin(), bearer(server.admin_token)
    with pytest.raises(grpc.RpcError) as err:
        admin.LabelDevice(pb.LabelDeviceRequest(id=device_id, labels={"note": "ok,site=paris"}),
                          metadata=auth)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "'note'" in (err.value.details() or "")
    device = admin.GetDevice(pb.GetDeviceRequest(id=device_id), metadata=auth)
    assert dict(device.labels) == {"site": "berlin"}
    with pytest.raises(grpc.RpcError) as err:
        admin.CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(labels={"note": "ok,site=paris"}), metadata=auth)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("selector", [",", " , ", ",,"])
def test_a_selector_of_empty_pairs_is_refused_not_read_as_the_whole_fleet(
        server: RunningServer, selector: str) -> None:
    """Input tried: `rollout create cnn:1.0.0 --selector` ',', ' , ' and ',,' with one device
    enrolled; none may become a rollout to every device."""
    push(server, "cnn", "1.0.0", modelgen.build_cnn(seed=1))
    wait_ready(server, "cnn", "1.0.0")
    enroll(server, labels={"site": "berlin"})
    admin, auth = server.admin(), bearer(server.admin_token)
    with pytest.raises(grpc.RpcError) as err:
        admin.CreateRollout(pb.CreateRolloutRequest(model="cnn", version="1.0.0",
                                                    selector=selector), metadata=auth)
    assert _code(err) == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty pair" in (err.value.details() or "")
    assert list(admin.ListRollouts(pb.ListRolloutsRequest(), metadata=auth).rollouts) == []
