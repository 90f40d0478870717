"""The agent's link to the control plane: one channel, the device credential, and what a failed
call means.

Invariants:
- One channel per agent, opened by ``connect`` (after start-up restored and serves locally, so
  a control plane that does not answer never delays serving) and closed by ``close``, which is
  also how a call in flight is cancelled when the agent stops.
- Every call has the settings' timeout and, once enrolled, the device credential.
- A failed call raises ``AgentTransportError`` (with its gRPC code name), never a grpc error;
  an UNAUTHENTICATED one says how to enroll the device again. The one exception is a refused
  enrollment, which raises ``EnrollmentRefusedError`` (a data error: the token is wrong).
- Used by the sync thread (enrollment, sync, downloads, reports) and by the watch thread
  (``watch``, its one stream); a grpc channel is safe to share between threads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from agent.errors import AgentTransportError, EnrollmentRefusedError
from agent.settings import AgentSettings
from agent.store import AgentStore, Credential
from agent.transport import bearer, is_transient, open_channel, rpc_code, transport_error
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc


class ServerLink:
    """Calls to ``address``'s DeviceService on behalf of this device."""

    def __init__(self, address: str, settings: AgentSettings, store: AgentStore,
                 credential: Credential | None) -> None:
        self.address = address
        self._settings = settings
        self._store = store
        self._credential = credential
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.DeviceServiceStub | None = None
        #: True until ``connect`` got a CA: then the link speaks TLS.
        self.plaintext = True

    @property
    def credential(self) -> Credential | None:
        return self._credential

    @property
    def ready(self) -> bool:
        """Connected and enrolled: device calls can be made."""
        return self._stub is not None and self._credential is not None

    def connect(self, tls_ca_pem: bytes | None) -> None:
        """Open the channel: TLS verified against ``tls_ca_pem``, plaintext without one."""
        self.plaintext = tls_ca_pem is None
        self._channel = open_channel(self.address, self._settings, tls_ca_pem=tls_ca_pem)
        self._stub = pb_grpc.DeviceServiceStub(self._channel)

    def close(self) -> None:
        """Close the channel; a call in flight fails at once (that is how stop cancels it)."""
        if self._channel is not None:
            self._channel.close()

    def enroll(self, request: pb.EnrollRequest, token: str) -> Credential:
        """Enroll with ``token``; the credential the server issued is used from now on.

        Raises EnrollmentRefusedError (the server refused the token: asking again will not
        help), AgentTransportError (not reachable, or a transient code: worth asking again).
        """
        try:
            response = self.stub.Enroll(request, timeout=self._settings.rpc_timeout_seconds,
                                        metadata=bearer(token))
        except grpc.RpcError as exc:
            if is_transient(exc):
                raise transport_error(exc, "enrollment") from exc
            code = rpc_code(exc)
            raise EnrollmentRefusedError(
                f"the server refused the enrollment ({code.name if code else '?'}: "
                f"{exc.details()}); create a new token with `edgefleet enroll-token create`",
                code=code.name if code else None,
            ) from exc
        self._credential = Credential(response.device_id, response.device_token, self.address)
        return self._credential

    @property
    def stub(self) -> pb_grpc.DeviceServiceStub:
        """The DeviceService stub (``connect`` first)."""
        if self._stub is None:
            raise RuntimeError("the link to the control plane is not connected yet")
        return self._stub

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the device credential (enrolled devices only)."""
        if self._credential is None:
            raise RuntimeError("the device is not enrolled yet")
        return bearer(self._credential.device_token)

    def call(self, action: str, rpc: str, request: Any) -> Any:
        """Call the unary DeviceService method ``rpc`` with the device credential.

        Raises AgentTransportError naming ``action`` (with a way out when the server no longer
        accepts the credential).
        """
        method = getattr(self.stub, rpc)
        try:
            return method(request, timeout=self._settings.rpc_timeout_seconds,
                          metadata=self.metadata())
        except grpc.RpcError as exc:
            error = transport_error(exc, action)
            if rpc_code(exc) == grpc.StatusCode.UNAUTHENTICATED:
                device = self._credential.device_id if self._credential else "?"
                error = AgentTransportError(
                    f"{error}; the server no longer accepts this device's credential (was "
                    f"device {device} revoked? see `edgefleet device show`). To enroll it as a "
                    f"new device: stop the agent, delete {self._store.credential_path} and "
                    f"{self._store.enrollment_key_path}, and run again with a new "
                    f"--enroll-token",
                    code=error.code,
                )
            raise error from exc

    def watch(self, known_sequence: int) -> Iterator[pb.WatchEvent]:
        """The device's Watch stream, event by event, until the server ends it (or
        ``watch_timeout_seconds``). Raises AgentTransportError."""
        try:
            yield from self.stub.Watch(pb.WatchRequest(known_sequence=known_sequence),
                                       timeout=self._settings.watch_timeout_seconds,
                                       metadata=self.metadata())
        except grpc.RpcError as exc:
            raise transport_error(exc, "watch") from exc
