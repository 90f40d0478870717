"""What every command handler receives: its parsed arguments, its output and its client factory.

Handlers have the signature ``handler(args, inv) -> int`` (an exit code) and raise ``CliError``
for expected failures.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.cli.connection import (
    ClientSettings,
    Role,
    missing_token_error,
    resolve_credentials,
    resolve_server,
)
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.output import Output

if TYPE_CHECKING:
    from controlplane.cli.client import AdminClient


@dataclass
class Invocation:
    args: argparse.Namespace
    output: Output
    settings: ClientSettings

    @property
    def command(self) -> str:
        """The command as typed, e.g. ``"model push"`` (for messages)."""
        return str(self.args.command_name)

    @property
    def server(self) -> str:
        return resolve_server(self.args.server)

    def admin(self, role: Role) -> AdminClient:
        """A client for AdminService; ``role`` is the least a token needs for this command.

        Raises ``CliError`` (AUTH) when no token is given anywhere.
        """
        from controlplane.cli.client import AdminClient  # grpc only for commands that call out

        credentials = resolve_credentials(self.args.token)
        if credentials is None:
            raise missing_token_error(self.command, role)
        return AdminClient(self.server, credentials, self.settings,
                           command=self.command, role=role, tls_ca=self.tls_ca)

    @property
    def tls_ca(self) -> bytes | None:
        """The CA to verify the server with (``--tls-ca``, else ``$EDGEFLEET_TLS_CA``), or None."""
        path = self.args.tls_ca or os.environ.get("EDGEFLEET_TLS_CA")
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read the TLS CA file {path}: {exc.strerror}",
                           ExitCode.USAGE) from exc
