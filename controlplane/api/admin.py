"""AdminService: what the `edgefleet` CLI calls. Authorised by role in ``auth.policy``."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np

from controlplane.api import convert
from controlplane.api.errors import rpc
from controlplane.app import ControlPlane
from controlplane.auth import services as auth
from controlplane.auth.interceptor import current_principal
from controlplane.celery_app import enqueue_after_commit
from controlplane.errors import AlreadyExistsError, InvalidArgumentError
from controlplane.fleet import services as fleet
from controlplane.registry import services as registry
from controlplane.registry import tasks as registry_tasks
from controlplane.registry.errors import InvalidModelError, ModelTooLargeError
from controlplane.registry.models import ModelVersion
from controlplane.registry.tflite import inspect_model
from controlplane.rollouts import services as rollouts
from controlplane.rollouts import tasks as rollout_tasks
from controlplane.rollouts.models import Rollout
from controlplane.selectors import parse_labels, parse_selector
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    # -- tokens ----------------------------------------------------------------------------

    @rpc
    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Any
    ) -> pb.CreateTokenResponse:
        who = current_principal().id

        def work() -> pb.CreateTokenResponse:
            with self.plane.tx() as s:
                row, token = auth.create_operator_token(
                    s, role=request.role, description=request.description, created_by=who
                )
                return pb.CreateTokenResponse(id=row.id, token=token, role=row.role)

        return await self.plane.run_db(work)

    @rpc
    async def ListTokens(
        self, request: pb.ListTokensRequest, context: Any
    ) -> pb.ListTokensResponse:
        def work() -> pb.ListTokensResponse:
            with self.plane.tx() as s:
                rows = auth.list_operator_tokens(s)
                return pb.ListTokensResponse(tokens=[convert.operator_token(t) for t in rows])

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
        settings = self.plane.settings
        uses = request.uses or settings.enrollment_token_default_uses
        ttl = request.expires_in_seconds or settings.enrollment_token_default_ttl_seconds
        if uses > settings.enrollment_token_max_uses:
            raise InvalidArgumentError(
                f"an enrollment token allows at most {settings.enrollment_token_max_uses} uses "
                f"(asked for {uses}): create several tokens")
        if ttl > settings.enrollment_token_max_ttl_seconds:
            raise InvalidArgumentError(
                f"an enrollment token lives at most {settings.enrollment_token_max_ttl_seconds}s "
                f"(asked for {ttl}s): create a new token when it expires")
        labels = parse_labels(",".join(f"{k}={v}" for k, v in request.labels.items()))

        def work() -> pb.CreateEnrollmentTokenResponse:
            with self.plane.tx() as s:
                row, token = auth.create_enrollment_token(
                    s,
                    labels=labels,
                    uses=uses,
                    expires_in=dt.timedelta(seconds=ttl),
                    now=self.plane.clock(),
                    created_by=who,
                )
                return pb.CreateEnrollmentTokenResponse(
                    id=row.id,
                    token=token,
                    uses=row.uses_total,
                    expires_at=convert.timestamp(row.expires_at),
                    labels=row.labels,
                )

        return await self.plane.run_db(work)

    # -- models ----------------------------------------------------------------------------

    @rpc
    async def PushModel(self, request_iterator: Any, context: Any) -> pb.ModelVersion:
        """Stream the upload into the store, validate it, and register a pending version.

        Nothing is written to the database before the bytes are complete, of the announced size,
        hash-checked and accepted by ``inspect_model``; a refused upload leaves no file.
        """
        settings = self.plane.settings
        who = current_principal().id
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgumentError("the first PushModel message must be the header")
        h = first.header
        registry.check_name_version(h.name, h.version)
        if h.size == 0:
            raise InvalidModelError("the model file is empty: nothing to push")
        if h.size > settings.max_model_bytes:
            raise _too_large(h.size, settings.max_model_bytes, "model", "max_model_bytes")
        if h.calibration_size > settings.max_calibration_bytes:
            raise _too_large(
                h.calibration_size,
                settings.max_calibration_bytes,
                "calibration file",
                "max_calibration_bytes",
            )
        if await self.plane.run_db(self._exists, h.name, h.version):
            raise AlreadyExistsError(
                f"{h.name}:{h.version} already exists: push a new version number"
            )

        stored = await self._receive(h, request_iterator)
        model, calibration = stored["model"], stored.get("calibration")

        def work() -> pb.ModelVersion:
            with self.plane.tx() as s:
                mv = registry.register_version(
                    s,
                    name=h.name,
                    version=h.version,
                    model=registry.Upload(sha256=model.sha256, size=model.size),
                    info=stored["info"],
                    calibration=(
                        registry.Upload(sha256=calibration.sha256, size=calibration.size)
                        if calibration
                        else None
                    ),
                    created_by=who,
                )
                enqueue_after_commit(s, registry_tasks.measure_version, mv.id)
                s.flush()
                return convert.model_version(registry.find_version(s, h.name, h.version))

        # Should registration fail now (a concurrent push of the same name:version won), the
        # committed blobs stay: they are valid, content-addressed, and may already be another
        # version's, so deleting them here could race with that version.
        return await self.plane.run_db(work)

    async def _receive(self, h: pb.PushModelHeader, stream: Any) -> dict[str, Any]:
        """Receive calibration chunks, then model chunks, into store uploads; validate the bytes
        while they are still uploads; then commit them.

        Returns {"model": StoredArtifact, "info": ModelInfo, "calibration": StoredArtifact (if
        any)}. On any error both uploads are aborted: nothing of a refused push is stored.
        """
        store, run = self.plane.store, self.plane.run_db
        parts = {
            "calibration": (h.calibration_size, h.calibration_sha256),
            "model": (h.size, h.sha256),
        }
        uploads = {
            part: store.begin_upload(max_bytes=size) for part, (size, _) in parts.items() if size
        }
        received = dict.fromkeys(uploads, 0)
        try:
            async for msg in stream:
                kind = msg.WhichOneof("part")
                part = {"calibration_chunk": "calibration", "chunk": "model"}.get(kind or "")
                if part is None or part not in uploads:
                    raise InvalidArgumentError(f"unexpected {kind} message in a model push")
                if part == "calibration" and received.get("model"):
                    raise InvalidArgumentError("calibration chunks must come before model chunks")
                data = msg.calibration_chunk if part == "calibration" else msg.chunk
                received[part] += len(data)
                if received[part] > parts[part][0]:
                    raise InvalidArgumentError(
                        f"{part} upload is longer than the announced {parts[part][0]} bytes"
                    )
                await run(uploads[part].write, data)
            for part in uploads:
                if received[part] != parts[part][0]:
                    raise InvalidArgumentError(
                        f"truncated upload: received {received[part]} of {parts[part][0]} {part} "
                        f"bytes; push again"
                    )
            info = await run(lambda: inspect_model(uploads["model"].read_back()))
            if "calibration" in uploads:
                await run(lambda: _check_calibration(uploads["calibration"].read_back(), info))
            stored: dict[str, Any] = {"info": info}
            for part, upload in uploads.items():
                size, digest = parts[part]
                stored[part] = await run(
                    upload.commit, expected_sha256=digest or None, expected_size=size
                )
            return stored
        except BaseException:
            for upload in uploads.values():
                upload.abort()
            raise

    def _exists(self, name: str, version: str) -> bool:
        with self.plane.tx() as s:
            return registry.version_exists(s, name, version)


    @rpc
    async def ListModels(
        self, request: pb.ListModelsRequest, context: Any
    ) -> pb.ListModelsResponse:
        def work() -> pb.ListModelsResponse:
            with self.plane.tx() as s:
                return pb.ListModelsResponse(
                    models=[convert.model_version(mv) for mv in registry.list_versions(s)]
                )

        return await self.plane.run_db(work)

    @rpc
    async def GetModel(self, request: pb.GetModelRequest, context: Any) -> pb.ModelVersion:
        def work() -> pb.ModelVersion:
            with self.plane.tx() as s:
                return convert.model_version(
                    registry.find_version(s, request.name, request.version)
                )

        return await self.plane.run_db(work)

    # -- devices ---------------------------------------------------------------------------

    @rpc
    async def ListDevices(
        self, request: pb.ListDevicesRequest, context: Any
    ) -> pb.ListDevicesResponse:
        selector = parse_selector(request.selector)

        def work() -> pb.ListDevicesResponse:
            with self.plane.tx() as s:
                return pb.ListDevicesResponse(
                    devices=[convert.device(d) for d in fleet.list_devices(s, selector)]
                )

        return await self.plane.run_db(work)

    @rpc
    async def GetDevice(self, request: pb.GetDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.tx() as s:
                return convert.device(fleet.get_device(s, request.id))

        return await self.plane.run_db(work)

    @rpc
    async def RevokeDevice(self, request: pb.RevokeDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.tx() as s:
                fleet.revoke_device(s, request.id, now=self.plane.clock())
                return convert.device(fleet.get_device(s, request.id))

        revoked = await self.plane.run_db(work)
        self.plane.credentials.forget(request.id)  # this server refuses it at once
        return revoked

    @rpc
    async def LabelDevice(self, request: pb.LabelDeviceRequest, context: Any) -> pb.Device:
        def work() -> pb.Device:
            with self.plane.tx() as s:
                fleet.label_device(s, request.id, dict(request.labels))
                s.flush()
                return convert.device(fleet.get_device(s, request.id))

        return await self.plane.run_db(work)

    # -- rollouts --------------------------------------------------------------------------

    def _rollout_proto(self, s: Any, r: Rollout) -> pb.Rollout:
        mv = s.get(ModelVersion, r.model_version_id)
        return convert.rollout(r, mv.model.name, mv.version)

    @rpc
    async def CreateRollout(self, request: pb.CreateRolloutRequest, context: Any) -> pb.Rollout:
        who = current_principal().id

        def work() -> pb.Rollout:
            with self.plane.tx() as s:
                r = rollouts.create_rollout(
                    s,
                    model=request.model,
                    version=request.version,
                    selector=request.selector,
                    created_by=who,
                    now=self.plane.clock(),
                )
                enqueue_after_commit(s, rollout_tasks.start, r.id)
                return self._rollout_proto(s, r)

        return await self.plane.run_db(work)

    @rpc
    async def ListRollouts(
        self, request: pb.ListRolloutsRequest, context: Any
    ) -> pb.ListRolloutsResponse:
        def work() -> pb.ListRolloutsResponse:
            with self.plane.tx() as s:
                return pb.ListRolloutsResponse(
                    rollouts=[self._rollout_proto(s, r) for r in rollouts.list_rollouts(s)]
                )

        return await self.plane.run_db(work)

    @rpc
    async def GetRollout(self, request: pb.GetRolloutRequest, context: Any) -> pb.Rollout:
        def work() -> pb.Rollout:
            with self.plane.tx() as s:
                return self._rollout_proto(s, rollouts.get_rollout(s, request.id))

        return await self.plane.run_db(work)

    @rpc
    async def ChangeRollout(self, request: pb.ChangeRolloutRequest, context: Any) -> pb.Rollout:
        def work() -> pb.Rollout:
            with self.plane.tx() as s:
                r = rollouts.change(
                    s,
                    request.id,
                    request.action,
                    signer=self.plane.signer,
                    settings=self.plane.settings,
                    now=self.plane.clock(),
                )
                if r.state == "pending":
                    enqueue_after_commit(s, rollout_tasks.start, r.id)
                return self._rollout_proto(s, r)

        return await self.plane.run_db(work)


def _too_large(size: int, limit: int, what: str, setting: str) -> Exception:
    return ModelTooLargeError(
        f"{what} is {size} bytes; this server accepts at most {limit} bytes (setting {setting})",
        limit=limit,
    )


def _check_calibration(data: bytes, info: Any) -> None:
    """A calibration .npz must hold one float array per model input: (N, *input_shape)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise InvalidArgumentError(f"calibration file is not a readable .npz: {exc}") from exc
    for t in info.inputs:
        if t.name not in arrays:
            raise InvalidArgumentError(
                f"calibration file has no array {t.name!r}; it needs one per model input "
                f"(found {sorted(arrays)})"
            )
        arr = arrays[t.name]
        if tuple(arr.shape[1:]) != tuple(t.shape) or arr.shape[0] < 1:
            raise InvalidArgumentError(
                f"calibration array {t.name!r} has shape {arr.shape}; expected (N, "
                f"{', '.join(map(str, t.shape))})"
            )
