"""gRPC access to AdminService: channel, bearer token, deadlines, and status -> CliError.

Invariants: no ``grpc.RpcError`` leaves this module; each becomes a ``CliError`` whose exit code
follows the status code (see ``errors.ExitCode``) and whose message carries the server's details
and says what to do. The token value never appears in a message, only where it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import grpc

from controlplane.cli.connection import (
    ROLE_WORDS,
    SERVER_ENV,
    TOKEN_HELP,
    ClientSettings,
    Credentials,
    Role,
)
from controlplane.cli.errors import CliError, ExitCode
from protos import edgefleet_pb2_grpc as pb_grpc


def error_for_status(
    code: grpc.StatusCode,
    details: str,
    *,
    server: str,
    command: str,
    role: Role,
    token_source: str,
    tls: bool = False,
) -> CliError:
    """The ``CliError`` a failed call becomes: exit code by status, message by situation."""
    said = details or code.name.lower()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        # A plaintext client at a TLS server (or the reverse) sees only a closed socket or a
        # failed handshake: name the likely mismatch rather than just "not running".
        mismatch = (
            "; if it was started with --tls-cert, pass --tls-ca FILE (EDGEFLEET_TLS_CA)"
            if not tls
            else "; if it runs without --tls-cert, drop --tls-ca, and check the CA signed its "
            "certificate"
        )
        return CliError(
            f"cannot reach the control plane at {server}: is `edgefleet server` running? "
            f"set --server/{SERVER_ENV}{mismatch} ({code.name}: {said})",
            ExitCode.UNREACHABLE,
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return CliError(
            f"the control plane rejected the token from {token_source}: {said}; "
            f"`{command}` needs {ROLE_WORDS[role]}: {TOKEN_HELP}",
            ExitCode.AUTH,
        )
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return CliError(
            f"permission denied: `{command}` needs {ROLE_WORDS[role]}, and the token from "
            f"{token_source} is not allowed: {said}",
            ExitCode.AUTH,
        )
    if code == grpc.StatusCode.NOT_FOUND:
        return CliError(f"not found: {said}", ExitCode.NOT_FOUND)
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
        return CliError(f"invalid input: {said}", ExitCode.INVALID)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return CliError(f"already exists: {said}", ExitCode.INVALID)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return CliError(f"not possible now: {said}", ExitCode.INVALID)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return CliError(f"over a limit: {said}", ExitCode.INVALID)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return CliError(
            f"the control plane at {server} does not support `{command}`: {said}", ExitCode.GENERIC
        )
    return CliError(f"the control plane failed ({code.name}): {said}", ExitCode.GENERIC)


class AdminClient:
    """One channel to AdminService for one command; use as a context manager.

    ``call(method, request)`` sends the bearer token and a deadline and maps any failure to a
    ``CliError`` (see ``error_for_status``).
    """

    def __init__(
        self,
        server: str,
        credentials: Credentials,
        settings: ClientSettings,
        *,
        command: str,
        role: Role,
        tls_ca: bytes | None = None,
    ) -> None:
        self.server = server
        self._credentials = credentials
        self._settings = settings
        self._command = command
        self._role = role
        self._tls = tls_ca is not None
        options = [("grpc.max_receive_message_length", settings.max_receive_message_bytes)]
        self._channel = (
            grpc.secure_channel(server, grpc.ssl_channel_credentials(tls_ca), options=options)
            if tls_ca is not None
            else grpc.insecure_channel(server, options=options)
        )
        self._stub = pb_grpc.AdminServiceStub(self._channel)

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def call(self, method: str, request: Any, *, timeout: float | None = None) -> Any:
        """``AdminService.<method>(request)``; ``request`` may be an iterator for client streams.

        Raises ``CliError`` for every failed call.
        """
        rpc = getattr(self._stub, method)
        try:
            return rpc(
                request,
                metadata=(("authorization", f"Bearer {self._credentials.token}"),),
                timeout=timeout if timeout is not None else self._settings.call_timeout_seconds,
            )
        except grpc.RpcError as exc:
            raise self.error_for(exc) from exc

    def items(self, method: str, request: Any, field: str) -> Iterator[Any]:
        """Every item of a paged listing (``AdminService.<method>``, the items in ``field`` of
        each response), following ``next_page_token`` to the last page. One response is held
        at a time; the server's page size applies.

        Raises ``CliError`` for a failed call, and for a server that hands back the token it
        was given (it would never end).
        """
        while True:
            response = self.call(method, request)
            yield from getattr(response, field)
            if not response.next_page_token:
                return
            if response.next_page_token == request.page_token:
                raise CliError(f"the control plane at {self.server} answered {method} with "
                               f"the same page again; giving up", ExitCode.GENERIC)
            following = type(request)()  # a copy: the caller's request stays as it was
            following.CopyFrom(request)
            following.page_token = response.next_page_token
            request = following

    def error_for(self, exc: grpc.RpcError) -> CliError:
        # Every RpcError raised by a sync stub call is also a grpc.Call with code()/details().
        call: Any = exc
        return error_for_status(
            call.code(),
            call.details() or "",
            server=self.server,
            command=self._command,
            role=self._role,
            token_source=self._credentials.source,
            tls=self._tls,
        )
