"""AdminService: what the `edgefleet` CLI calls. Authorised by role in ``auth.policy``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controlplane.api import convert
from controlplane.api.errors import rpc
from controlplane.app import ControlPlane
from controlplane.audit import services as audit
from controlplane.auth import services as auth
from controlplane.auth.interceptor import current_principal
from controlplane.errors import InvalidArgumentError, ResourceExhaustedError
from controlplane.fleet import compat, explain
from controlplane.fleet import services as fleet
from controlplane.registry import push
from controlplane.registry import services as registry
from controlplane.registry.models import ModelVersion
from controlplane.rollouts import services as rollouts
from controlplane.rollouts.models import Rollout
from controlplane.telemetry import class_metrics, device_view
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._pushes = asyncio.Semaphore(plane.settings.max_concurrent_pushes)

    # -- tokens ----------------------------------------------------------------------------

    @rpc
    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Any
    ) -> pb.CreateTokenResponse:
        who = current_principal().id

        def work() -> pb.CreateTokenResponse:
            with self.plane.tx() as s:
                row, token = auth.create_operator_token(
                    s, role=request.role, description=request.description, created_by=who,
                    expires_in_seconds=request.expires_in_seconds or None,
                    now=self.plane.clock(), settings=self.plane.settings,
                )
                return pb.CreateTokenResponse(id=row.id, token=token, role=row.role,
                                              expires_at=convert.timestamp(row.expires_at))

        return await self.plane.run_db(work)

    @rpc
    async def ListTokens(
        self, request: pb.ListTokensRequest, context: Any
    ) -> pb.ListTokensResponse:
        def work() -> pb.ListTokensResponse:
            with self.plane.read() as s:
                page = auth.list_operator_tokens(s, convert.page_ask(request),
                                                 settings=self.plane.settings,
                                                 render=convert.operator_token)
                return pb.ListTokensResponse(tokens=page.items, next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Any) -> pb.OperatorToken:
        def work() -> pb.OperatorToken:
            with self.plane.tx() as s:
                row = auth.revoke_operator_token(s, request.id, now=self.plane.clock())
                return convert.operator_token(row)

        return await self.plane.run_db(work)  # never cached: refused everywhere at once

    @rpc
    async def RevokeEnrollmentToken(
        self, request: pb.RevokeEnrollmentTokenRequest, context: Any
    ) -> pb.RevokedEnrollmentToken:
        def work() -> pb.RevokedEnrollmentToken:
            with self.plane.tx() as s:
                row = auth.revoke_enrollment_token(s, request.id, now=self.plane.clock())
                return pb.RevokedEnrollmentToken(
                    id=row.id, uses_left=row.uses_left, revoked_at=convert.timestamp(row.revoked_at)
                )

        return await self.plane.run_db(work)

    @rpc
    async def CreateEnrollmentToken(
        self, request: pb.CreateEnrollmentTokenRequest, context: Any
    ) -> pb.CreateEnrollmentTokenResponse:
        who = current_principal().id

        def work() -> pb.CreateEnrollmentTokenResponse:
            with self.plane.tx() as s:
                row, token = auth.create_enrollment_token(
                    s,
                    labels=dict(request.labels),
                    uses=request.uses or None,
                    expires_in_seconds=request.expires_in_seconds or None,
                    settings=self.plane.settings,
                    now=self.plane.clock(),
                    created_by=who,
                )
                return convert.enrollment_token(row, token)

        return await self.plane.run_db(work)

    # -- models ----------------------------------------------------------------------------

    @rpc
    async def PushModel(self, request_iterator: Any, context: Any) -> pb.ModelVersion:
        """The upload protocol and its checks are ``registry.push``'s; this moves the messages.

        Each message must arrive within ``push_idle_timeout_seconds``, and at most
        ``max_concurrent_pushes`` pushes are received at once (RESOURCE_EXHAUSTED beyond).
        """
        settings, run = self.plane.settings, self.plane.run_db
        who = current_principal().id
        messages = aiter(request_iterator)
        first = await self._next_part(messages)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgumentError("the first PushModel message must be the header")
        header = convert.push_header(first.header)
        await run(self._check_new, header)
        async with self._push_slot():
            receiver = push.PushReceiver(header, store=self.plane.store, settings=settings)
            try:
                while (msg := await self._next_part(messages)) is not None:
                    kind = msg.WhichOneof("part")
                    if kind not in _PUSH_PARTS:
                        raise InvalidArgumentError(f"unexpected {kind} message in a model push")
                    await run(receiver.add, _PUSH_PARTS[kind], getattr(msg, kind))
                received = await run(receiver.finish)
            except BaseException:
                await asyncio.shield(run(receiver.abort))
                raise

        def work() -> pb.ModelVersion:
            with self.plane.tx() as s:
                return convert.model_version(push.register(s, received, created_by=who))

        # Should registration fail now (a concurrent push of the same name:version won), the
        # committed blobs stay: they are valid, content-addressed, and may already be another
        # version's, so deleting them here could race with that version.
        return await run(work)

    def _check_new(self, header: push.PushHeader) -> None:
        with self.plane.read() as s:
            push.check_new(s, header, settings=self.plane.settings)

    async def _next_part(self, messages: Any) -> Any:
        """The next push message, or None at the end; an idle stream is cut."""
        timeout = self.plane.settings.push_idle_timeout_seconds
        try:
            return await asyncio.wait_for(anext(messages, None), timeout=timeout)
        except TimeoutError:
            raise InvalidArgumentError(
                f"the push sent nothing for {timeout:.0f} s (setting push_idle_timeout_seconds); "
                f"nothing was stored: push again") from None

    @contextlib.asynccontextmanager
    async def _push_slot(self) -> AsyncIterator[None]:
        """One of ``max_concurrent_pushes`` receiving slots, waited for as long as a message may
        take (a push holds no temp file while it waits)."""
        settings = self.plane.settings
        try:
            await asyncio.wait_for(self._pushes.acquire(),
                                   timeout=settings.push_idle_timeout_seconds)
        except TimeoutError:
            raise ResourceExhaustedError(
                f"{settings.max_concurrent_pushes} pushes are being received already (setting "
                f"max_concurrent_pushes): push again shortly") from None
        try:
            yield
        finally:
            self._pushes.release()

    @rpc
    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        def work() -> pb.ListModelsResponse:
            with self.plane.read() as s:
                page = registry.list_versions(s, convert.page_ask(request),
                                              settings=self.plane.settings,
                                              render=convert.model_version)
                return pb.ListModelsResponse(models=page.items, next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.ModelVersion:
        def work() -> pb.ModelVersion:
            with self.plane.read() as s:
                mv = registry.find_version(s, request.name, request.version)
                by_class = (class_metrics.read_class_metrics(
                    s, mv.model.name, mv.version, settings=self.plane.settings)
                    if request.by_class else None)
                return convert.model_version(mv, by_class)

        return await self.plane.run_db(work)

    # -- devices ---------------------------------------------------------------------------

    @rpc
    async def ListDevices(
        self, request: pb.ListDevicesRequest, context: Any
    ) -> pb.ListDevicesResponse:
        def work() -> pb.ListDevicesResponse:
            with self.plane.read() as s:
                page = fleet.list_devices(s, request.selector, convert.page_ask(request),
                                          settings=self.plane.settings, render=convert.device)
                return pb.ListDevicesResponse(devices=page.items, next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def GetDevice(self, request: pb.GetDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.read() as s:
                return convert.device_view(
                    device_view.show_device(s, request.id, settings=self.plane.settings))

        return await self.plane.run_db(work)

    @rpc
    async def RevokeDevice(self, request: pb.RevokeDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.tx() as s:
                fleet.revoke_device(s, request.id, now=self.plane.clock())
                return convert.device_view(
                    device_view.show_device(s, request.id, settings=self.plane.settings))

        revoked = await self.plane.run_db(work)
        self.plane.credentials.forget(request.id)  # this server refuses it at once
        return revoked

    @rpc
    async def LabelDevice(self, request: pb.LabelDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.tx() as s:
                fleet.label_device(s, request.id, dict(request.labels),
                                   settings=self.plane.settings)
                s.flush()
                return convert.device_view(
                    device_view.show_device(s, request.id, settings=self.plane.settings))

        return await self.plane.run_db(work)

    # -- rollouts --------------------------------------------------------------------------

    def _rollout_proto(self, s: Any, r: Rollout) -> pb.Rollout:
        mv = s.get(ModelVersion, r.model_version_id)
        return convert.rollout(rollouts.view(s, r, settings=self.plane.settings),
                               mv.model.name, mv.version)

    @rpc
    async def CreateRollout(self, request: pb.CreateRolloutRequest, context: Any) -> pb.Rollout:
        actor = _actor()
        now = self.plane.clock()
        plan = convert.plan_ask(request.plan, now=now)

        def work() -> pb.Rollout:
            with self.plane.tx() as s:
                r = rollouts.create_rollout(
                    s,
                    model=request.model,
                    version=request.version,
                    selector=request.selector,
                    variant=request.variant,
                    prefer=request.prefer,
                    plan=plan,
                    actor=actor,
                    settings=self.plane.settings,
                    now=now,
                )
                return self._rollout_proto(s, r)

        return await self.plane.run_db(work)

    @rpc
    async def RolloutHistory(self, request: pb.RolloutHistoryRequest, context: Any
                             ) -> pb.RolloutHistoryResponse:
        def work() -> pb.RolloutHistoryResponse:
            with self.plane.read() as s:
                page = rollouts.history(s, request.id, convert.page_ask(request),
                                        settings=self.plane.settings,
                                        render=convert.audit_event)
                return pb.RolloutHistoryResponse(events=page.items,
                                                 next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def ListAudit(self, request: pb.ListAuditRequest, context: Any
                        ) -> pb.ListAuditResponse:
        def work() -> pb.ListAuditResponse:
            with self.plane.read() as s:
                page = audit.list_events(s, convert.page_ask(request),
                                         settings=self.plane.settings,
                                         render=convert.audit_event,
                                         subject_id=request.subject_id, actor=request.actor)
                return pb.ListAuditResponse(events=page.items, next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def ExplainDevice(self, request: pb.ExplainDeviceRequest, context: Any
                            ) -> pb.Explanation:
        def work() -> pb.Explanation:
            with self.plane.read() as s:
                return convert.explanation(explain.explain(
                    s, request.device_id, request.model, request.version,
                    prefer=request.prefer, variant=request.variant,
                    settings=self.plane.settings))

        return await self.plane.run_db(work)

    @rpc
    async def ListHardwareClasses(self, request: pb.ListHardwareClassesRequest, context: Any
                                  ) -> pb.ListHardwareClassesResponse:
        def work() -> pb.ListHardwareClassesResponse:
            with self.plane.read() as s:
                return pb.ListHardwareClassesResponse(classes=[
                    convert.hardware_class_message(c, n) for c, n in fleet.list_classes(s)])

        return await self.plane.run_db(work)

    @rpc
    async def ListIncompatibilities(self, request: pb.ListIncompatibilitiesRequest,
                                    context: Any) -> pb.ListIncompatibilitiesResponse:
        def work() -> pb.ListIncompatibilitiesResponse:
            with self.plane.read() as s:
                marks = compat.list_marks(s, model=request.model, version=request.version,
                                          limit=self.plane.settings.max_page_size)
                return pb.ListIncompatibilitiesResponse(incompatibilities=[
                    convert.incompatibility(m, v) for m, v in marks])

        return await self.plane.run_db(work)

    @rpc
    async def ClearIncompatibility(self, request: pb.ClearIncompatibilityRequest,
                                   context: Any) -> pb.ClearIncompatibilityResponse:
        def work() -> pb.ClearIncompatibilityResponse:
            with self.plane.tx() as s:
                return pb.ClearIncompatibilityResponse(cleared=compat.clear(
                    s, request.model, request.version, request.variant,
                    request.hardware_class))

        return await self.plane.run_db(work)

    @rpc
    async def ListRollouts(
        self, request: pb.ListRolloutsRequest, context: Any
    ) -> pb.ListRolloutsResponse:
        def work() -> pb.ListRolloutsResponse:
            with self.plane.read() as s:
                page = rollouts.list_rollouts(s, convert.page_ask(request),
                                              settings=self.plane.settings,
                                              render=lambda r: self._rollout_proto(s, r))
                return pb.ListRolloutsResponse(rollouts=page.items,
                                               next_page_token=page.next_token)

        return await self.plane.run_db(work)

    @rpc
    async def GetRollout(self, request: pb.GetRolloutRequest, context: Any) -> pb.Rollout:
        def work() -> pb.Rollout:
            with self.plane.read() as s:
                return self._rollout_proto(s, rollouts.get_rollout(s, request.id))

        return await self.plane.run_db(work)

    @rpc
    async def ChangeRollout(self, request: pb.ChangeRolloutRequest, context: Any) -> pb.Rollout:
        actor = _actor()

        def work() -> pb.Rollout:
            with self.plane.tx() as s:
                r = rollouts.change(
                    s,
                    request.id,
                    request.action,
                    actor=actor,
                    reason=request.reason,
                    signer=self.plane.signer,
                    settings=self.plane.settings,
                    now=self.plane.clock(),
                )
                return self._rollout_proto(s, r)

        return await self.plane.run_db(work)


def _actor() -> audit.Actor:
    """The calling operator, as the audit log records it."""
    principal = current_principal()
    return audit.Actor(principal.id, principal.role or principal.kind)


#: PushModelRequest's oneof fields and the parts of a push they carry.
_PUSH_PARTS: dict[str, push.Part] = {"calibration_chunk": "calibration", "chunk": "model"}
