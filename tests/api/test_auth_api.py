"""Every RPC is authenticated and authorised by the interceptor: what callers without the right
credential get, over a real socket."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import enroll, push, wait_for, wait_ready


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as exc:
        return exc.code()
    raise AssertionError("the call succeeded")


def test_missing_token_is_unauthenticated(server: RunningServer) -> None:
    """Input tried: no authorization metadata at all."""
    assert (
        _code(lambda: server.admin().ListModels(pb.ListModelsRequest()))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    assert _code(lambda: server.device().Sync(pb.SyncRequest())) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", ["garbage", "efo_0123456789abcdef_forgedsecret", "Basic abc"])
def test_wrong_token_is_unauthenticated(server: RunningServer, token: str) -> None:
    """Input tried: garbage, a forged operator token, a non-bearer scheme."""
    assert (
        _code(lambda: server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(token)))
        == grpc.StatusCode.UNAUTHENTICATED
    )


def test_health_and_reflection_are_public(server: RunningServer) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = health_pb2_grpc.HealthStub(server.channel)
    resp = stub.Check(health_pb2.HealthCheckRequest(service="edgefleet.v1.DeviceService"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    answer = next(iter(refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]))))
    names = {s.name for s in answer.list_services_response.service}
    assert {"edgefleet.v1.AdminService", "edgefleet.v1.DeviceService",
            "grpc.health.v1.Health"} <= names


def test_viewer_can_read_but_not_change(server: RunningServer) -> None:
    viewer = (
        server.admin()
        .CreateToken(pb.CreateTokenRequest(role="viewer"), metadata=bearer(server.admin_token))
        .token
    )
    server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(viewer))
    assert (
        _code(
            lambda: server.admin().CreateEnrollmentToken(
                pb.CreateEnrollmentTokenRequest(), metadata=bearer(viewer)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        _code(
            lambda: server.admin().PushModel(
                iter(
                    [pb.PushModelRequest(header=pb.PushModelHeader(name="x", version="1", size=4))]
                ),
                metadata=bearer(viewer),
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert (
        _code(
            lambda: server.admin().CreateToken(
                pb.CreateTokenRequest(role="admin"), metadata=bearer(viewer)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_operator_cannot_mint_tokens(server: RunningServer) -> None:
    op = (
        server.admin()
        .CreateToken(pb.CreateTokenRequest(role="operator"), metadata=bearer(server.admin_token))
        .token
    )
    assert (
        _code(
            lambda: server.admin().CreateToken(
                pb.CreateTokenRequest(role="viewer"), metadata=bearer(op)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_device_credential_on_admin_rpc_is_denied(server: RunningServer) -> None:
    """Input tried: a valid device token on AdminService.ListDevices."""
    _, device_token = enroll(server)
    assert (
        _code(
            lambda: server.admin().ListDevices(
                pb.ListDevicesRequest(), metadata=bearer(device_token)
            )
        )
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_admin_token_cannot_act_as_a_device(server: RunningServer) -> None:
    assert (
        _code(lambda: server.device().Sync(pb.SyncRequest(), metadata=bearer(server.admin_token)))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_enrollment_token_used_past_its_uses(server: RunningServer) -> None:
    """Input tried: a one-use enrollment token presented a second time."""
    et = server.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(uses=1), metadata=bearer(server.admin_token)
    )
    server.device().Enroll(pb.EnrollRequest(name="a"), metadata=bearer(et.token))
    assert (
        _code(lambda: server.device().Enroll(pb.EnrollRequest(name="b"), metadata=bearer(et.token)))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    devices = (
        server.admin()
        .ListDevices(pb.ListDevicesRequest(), metadata=bearer(server.admin_token))
        .devices
    )
    assert [d.name for d in devices] == ["a"]


def test_enroll_repeated_after_a_lost_answer_gets_the_same_device(server: RunningServer) -> None:
    """Input tried: a one-use enrollment token sent twice with the same enrollment key (the
    agent never saw the first answer), then once more with another key."""
    et = server.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(uses=1, labels={"site": "flaky"}),
        metadata=bearer(server.admin_token))
    request = pb.EnrollRequest(name="cam", enrollment_key="K" * 43)
    lost = server.device().Enroll(request, metadata=bearer(et.token))
    again = server.device().Enroll(request, metadata=bearer(et.token))
    assert again.device_id == lost.device_id and again.device_token != lost.device_token
    synced = server.device().Sync(pb.SyncRequest(), metadata=bearer(again.device_token))
    assert synced.poll_interval_seconds > 0
    # the credential nobody received is dead
    assert (_code(lambda: server.device().Sync(pb.SyncRequest(),
                                               metadata=bearer(lost.device_token)))
            == grpc.StatusCode.UNAUTHENTICATED)
    other = pb.EnrollRequest(name="intruder", enrollment_key="Z" * 43)
    assert (_code(lambda: server.device().Enroll(other, metadata=bearer(et.token)))
            == grpc.StatusCode.UNAUTHENTICATED)
    devices = server.admin().ListDevices(pb.ListDevicesRequest(selector="site=flaky"),
                                         metadata=bearer(server.admin_token)).devices
    assert [(d.id, d.name) for d in devices] == [(lost.device_id, "cam")]


def test_malformed_enrollment_key_is_invalid_argument(server: RunningServer) -> None:
    """Input tried: an enrollment key of five characters."""
    et = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(uses=1),
                                              metadata=bearer(server.admin_token))
    assert (_code(lambda: server.device().Enroll(pb.EnrollRequest(enrollment_key="short"),
                                                 metadata=bearer(et.token)))
            == grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize(
    ("request_fields", "complaint"),
    [
        ({"uses": 4_000_000_000}, "at most 100000 uses"),
        ({"expires_in_seconds": 2**62}, "lives at most"),
    ],
)
def test_enrollment_token_beyond_the_limits_is_refused(
    server: RunningServer, request_fields: dict[str, int], complaint: str
) -> None:
    """Input tried: an enrollment token for four billion devices, and one living 2**62 s
    (which would overflow the database column and the date arithmetic)."""
    with pytest.raises(grpc.RpcError) as err:
        server.admin().CreateEnrollmentToken(
            pb.CreateEnrollmentTokenRequest(**request_fields),  # type: ignore[arg-type]
            metadata=bearer(server.admin_token))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert complaint in (err.value.details() or "")


def test_expired_enrollment_token_is_refused_over_the_wire(server: RunningServer) -> None:
    """Input tried: an agent enrolls with a one-second enrollment token two seconds late."""
    import time

    et = server.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(uses=5, expires_in_seconds=1),
        metadata=bearer(server.admin_token))
    time.sleep(2.0)
    with pytest.raises(grpc.RpcError) as err:
        server.device().Enroll(pb.EnrollRequest(name="late"), metadata=bearer(et.token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (err.value.details() or "")
    devices = server.admin().ListDevices(pb.ListDevicesRequest(),
                                         metadata=bearer(server.admin_token))
    assert [d.name for d in devices.devices if d.name == "late"] == []  # no device half-made


def test_device_reaches_only_its_own_state_and_artifacts(server: RunningServer) -> None:
    """Device A asks for device B's artifact: NOT_FOUND; A's sync returns A's document only."""
    model = modelgen.build_cnn(seed=3)
    push(server, "cnn", "1.0.0", model)
    wait_ready(server, "cnn", "1.0.0")
    a_id, a_token = enroll(server, labels={"site": "a"}, name="a")
    b_id, b_token = enroll(server, labels={"site": "b"}, name="b")
    rollout = server.admin().CreateRollout(
        pb.CreateRolloutRequest(model="cnn", version="1.0.0", selector="site=b"),
        metadata=bearer(server.admin_token),
    )
    assert rollout.id

    def b_state() -> pb.SyncResponse | None:
        r = server.device().Sync(pb.SyncRequest(known_sequence=0), metadata=bearer(b_token))
        return r if r.HasField("desired_state") else None

    b_doc = wait_for("device b's desired state", b_state)
    import json

    payload = json.loads(b_doc.desired_state.payload)
    assert payload["device_id"] == b_id
    sha = payload["models"][0]["sha256"]
    # A has no desired state and may not fetch B's artifact
    a_sync = server.device().Sync(pb.SyncRequest(known_sequence=0), metadata=bearer(a_token))
    assert not a_sync.HasField("desired_state")
    with pytest.raises(grpc.RpcError) as err:
        list(
            server.device().DownloadArtifact(
                pb.DownloadRequest(sha256=sha), metadata=bearer(a_token)
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Input tried: A claims to run B's variant, hoping that unlocks the download.
    entry = payload["models"][0]
    ref = pb.ModelRef(model=entry["model"], version=entry["version"], variant=entry["variant"],
                      sha256=sha)
    server.device().ReportStatus(
        pb.StatusReport(events=[pb.InstallEvent(ref=ref, state="active")]),
        metadata=bearer(a_token),
    )
    with pytest.raises(grpc.RpcError) as err:
        list(server.device().DownloadArtifact(pb.DownloadRequest(sha256=sha),
                                              metadata=bearer(a_token)))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # B may, from any offset
    chunks = list(
        server.device().DownloadArtifact(
            pb.DownloadRequest(sha256=sha, offset=10), metadata=bearer(b_token)
        )
    )
    assert b"".join(c.data for c in chunks) == model[10:]
    assert a_id != b_id


def test_a_device_cannot_relabel_itself_out_of_its_enrollment_labels(server: RunningServer) -> None:
    """Input tried: an agent asking for site=paris with a token that says site=berlin."""
    et = server.admin().CreateEnrollmentToken(
        pb.CreateEnrollmentTokenRequest(uses=1, labels={"site": "berlin"}),
        metadata=bearer(server.admin_token))
    resp = server.device().Enroll(
        pb.EnrollRequest(name="x", labels={"site": "paris", "tier": "canary"}),
        metadata=bearer(et.token))
    dev = server.admin().GetDevice(pb.GetDeviceRequest(id=resp.device_id),
                                   metadata=bearer(server.admin_token))
    assert dict(dev.labels) == {"site": "berlin", "tier": "canary"}


def test_revoked_operator_token_is_refused_at_once_though_it_was_cached(
    server: RunningServer,
) -> None:
    """Input tried: an operator token that worked a moment ago (so the server cached it), used
    again right after an admin revoked it."""
    created = server.admin().CreateToken(pb.CreateTokenRequest(role="operator"),
                                         metadata=bearer(server.admin_token))
    server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(created.token))
    revoked = server.admin().RevokeToken(pb.RevokeTokenRequest(id=created.id),
                                         metadata=bearer(server.admin_token))
    assert revoked.HasField("revoked_at")
    assert (_code(lambda: server.admin().ListModels(pb.ListModelsRequest(),
                                                    metadata=bearer(created.token)))
            == grpc.StatusCode.UNAUTHENTICATED)
    listed = server.admin().ListTokens(pb.ListTokensRequest(),
                                       metadata=bearer(server.admin_token)).tokens
    assert {t.id: t.HasField("revoked_at") for t in listed}[created.id] is True


def test_only_admins_list_and_revoke_operator_tokens(server: RunningServer) -> None:
    """Input tried: an operator token calling ListTokens and RevokeToken (on the admin token)."""
    operator = server.admin().CreateToken(pb.CreateTokenRequest(role="operator"),
                                          metadata=bearer(server.admin_token)).token
    admin_id = server.admin_token.split("_")[1]
    for call in (
        lambda: server.admin().ListTokens(pb.ListTokensRequest(), metadata=bearer(operator)),
        lambda: server.admin().RevokeToken(pb.RevokeTokenRequest(id=admin_id),
                                           metadata=bearer(operator)),
    ):
        assert _code(call) == grpc.StatusCode.PERMISSION_DENIED
    # and the only admin token cannot be revoked, by anyone
    assert (_code(lambda: server.admin().RevokeToken(pb.RevokeTokenRequest(id=admin_id),
                                                      metadata=bearer(server.admin_token)))
            == grpc.StatusCode.FAILED_PRECONDITION)


def test_revoked_device_is_refused_at_once_and_cannot_enroll_back(server: RunningServer) -> None:
    """Input tried: a device credential used (and cached), then used after the device was
    revoked; a viewer trying to revoke; the device repeating its Enroll with its old key."""
    et = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(uses=2),
                                              metadata=bearer(server.admin_token))
    request = pb.EnrollRequest(name="stolen", enrollment_key="S" * 43)
    enrolled = server.device().Enroll(request, metadata=bearer(et.token))
    server.device().Sync(pb.SyncRequest(), metadata=bearer(enrolled.device_token))
    viewer = server.admin().CreateToken(pb.CreateTokenRequest(role="viewer"),
                                        metadata=bearer(server.admin_token)).token
    assert (_code(lambda: server.admin().RevokeDevice(
        pb.RevokeDeviceRequest(id=enrolled.device_id), metadata=bearer(viewer)))
            == grpc.StatusCode.PERMISSION_DENIED)
    shown = server.admin().RevokeDevice(pb.RevokeDeviceRequest(id=enrolled.device_id),
                                        metadata=bearer(server.admin_token))
    assert shown.HasField("revoked_at")
    assert (_code(lambda: server.device().Sync(pb.SyncRequest(),
                                               metadata=bearer(enrolled.device_token)))
            == grpc.StatusCode.UNAUTHENTICATED)
    assert (_code(lambda: server.device().Enroll(request, metadata=bearer(et.token)))
            == grpc.StatusCode.UNAUTHENTICATED)


def test_revoked_enrollment_token_enrolls_nobody_over_the_wire(server: RunningServer) -> None:
    """Input tried: an enrollment token with uses left, presented after it was revoked."""
    et = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(uses=3),
                                              metadata=bearer(server.admin_token))
    revoked = server.admin().RevokeEnrollmentToken(pb.RevokeEnrollmentTokenRequest(id=et.id),
                                                   metadata=bearer(server.admin_token))
    assert revoked.uses_left == 3
    assert (_code(lambda: server.device().Enroll(pb.EnrollRequest(name="late"),
                                                 metadata=bearer(et.token)))
            == grpc.StatusCode.UNAUTHENTICATED)


def test_an_admin_token_revoked_elsewhere_is_refused_here_at_once(server: RunningServer) -> None:
    """Input tried: a second admin token, used here (so a cache would hold it), then revoked
    straight in the database, as another server would: this server must not let it mint a new
    token (a cached admin could turn a short window into lasting access)."""
    import datetime as dt

    import sqlalchemy as sa

    from controlplane.auth.models import OperatorToken
    from controlplane.db import make_engine

    second = server.admin().CreateToken(pb.CreateTokenRequest(role="admin"),
                                        metadata=bearer(server.admin_token))
    server.admin().ListTokens(pb.ListTokensRequest(), metadata=bearer(second.token))
    engine = make_engine(server.settings.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(OperatorToken).where(OperatorToken.id == second.id)
                         .values(revoked_at=dt.datetime.now(dt.UTC)))
    finally:
        engine.dispose()
    assert (_code(lambda: server.admin().CreateToken(pb.CreateTokenRequest(role="admin"),
                                                     metadata=bearer(second.token)))
            == grpc.StatusCode.UNAUTHENTICATED)


def test_a_repeated_enroll_revokes_the_cached_old_credential_at_once(
        server: RunningServer) -> None:
    """Input tried (L1): a device syncs with its credential (so this server caches it), then
    the same enrollment token and key enroll again; the old credential is refused at the next
    call on this server, not when the 120 s cache entry expires."""
    et = server.admin().CreateEnrollmentToken(pb.CreateEnrollmentTokenRequest(uses=1),
                                              metadata=bearer(server.admin_token))
    request = pb.EnrollRequest(name="cam", enrollment_key="L" * 43)
    first = server.device().Enroll(request, metadata=bearer(et.token))
    server.device().Sync(pb.SyncRequest(), metadata=bearer(first.device_token))  # now cached
    second = server.device().Enroll(request, metadata=bearer(et.token))
    assert second.device_id == first.device_id
    assert (_code(lambda: server.device().Sync(pb.SyncRequest(),
                                               metadata=bearer(first.device_token)))
            == grpc.StatusCode.UNAUTHENTICATED)
    assert server.device().Sync(pb.SyncRequest(),
                                metadata=bearer(second.device_token)).poll_interval_seconds > 0


def test_an_operator_token_past_its_expiry_is_refused_saying_so(server: RunningServer) -> None:
    """Input tried: `token create --role viewer --expires 1s`, used at once and 1.5 s later."""
    import time

    made = server.admin().CreateToken(
        pb.CreateTokenRequest(role="viewer", expires_in_seconds=1),
        metadata=bearer(server.admin_token))
    assert made.HasField("expires_at")
    server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(made.token))
    time.sleep(1.5)
    with pytest.raises(grpc.RpcError) as err:
        server.admin().ListModels(pb.ListModelsRequest(), metadata=bearer(made.token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired at" in (err.value.details() or "")
    listed = server.admin().ListTokens(pb.ListTokensRequest(),
                                       metadata=bearer(server.admin_token)).tokens
    assert [t.HasField("expires_at") for t in listed if t.id == made.id] == [True]
