"""Where the CLI connects, with which token, and within which bounds. No gRPC imported here,
so building the parser and ``--help`` stay light.

Token lookup order: ``--token``, ``$EDGEFLEET_TOKEN``, then the first existing file of
``$EDGEFLEET_DATA_DIR/admin-token`` and ``./edgefleet-data/admin-token`` (what ``edgefleet server``
writes on its first start). Invariant: the token value is never put into a message, only where
it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from controlplane.cli.errors import CliError, ExitCode
from controlplane.config import MiB, Settings

DEFAULT_SERVER = "127.0.0.1:7443"
SERVER_ENV = "EDGEFLEET_SERVER"
TOKEN_ENV = "EDGEFLEET_TOKEN"
DATA_DIR_ENV = "EDGEFLEET_DATA_DIR"
TOKEN_FILE_NAME = "admin-token"

Role = Literal["admin", "operator", "viewer"]

# The least role each command asks for, in words. The server's interceptor is the authority on
# the policy; these words only tell a person which token to fetch.
ROLE_WORDS: dict[Role, str] = {
    "admin": "an admin token",
    "operator": "an operator or admin token",
    "viewer": "a viewer, operator or admin token",
}

_SERVER_DEFAULTS = Settings()


@dataclass(frozen=True)
class ClientSettings:
    """Every bound the CLI applies on its side of the wire."""

    call_timeout_seconds: float = 30.0
    # A push carries up to max_model_bytes; give slow links their time but never hang forever.
    push_timeout_seconds: float = 3600.0
    chunk_bytes: int = _SERVER_DEFAULTS.chunk_bytes
    # Model listings carry signed manifests: allow more than grpc's 4 MiB default per response.
    max_receive_message_bytes: int = 64 * MiB
    watch_interval_seconds: float = 2.0
    # `--watch` rides out a control-plane restart for this long before giving up (exit 3).
    watch_outage_seconds: float = 120.0


@dataclass(frozen=True)
class Credentials:
    token: str
    source: str  # "--token", "EDGEFLEET_TOKEN" or the file it was read from


def resolve_server(flag: str | None) -> str:
    """``--server``, else ``$EDGEFLEET_SERVER``, else the local default."""
    return flag or os.environ.get(SERVER_ENV) or DEFAULT_SERVER


def token_file_candidates() -> list[Path]:
    """Where a token is looked for when neither ``--token`` nor ``$EDGEFLEET_TOKEN`` is set."""
    candidates = []
    if data_dir := os.environ.get(DATA_DIR_ENV):
        candidates.append(Path(data_dir) / TOKEN_FILE_NAME)
    candidates.append(Path("edgefleet-data") / TOKEN_FILE_NAME)
    return candidates


def resolve_credentials(flag: str | None) -> Credentials | None:
    """The token to send and where it came from, or None when there is none anywhere.

    Raises ``CliError`` (AUTH) when a token file exists but cannot be read or is empty.
    """
    if flag:
        return Credentials(flag.strip(), "--token")
    if env := os.environ.get(TOKEN_ENV):
        return Credentials(env.strip(), TOKEN_ENV)
    for path in token_file_candidates():
        if not path.exists():
            continue
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            message = f"cannot read the token file {path}: {exc.strerror}"
            raise CliError(message, ExitCode.AUTH) from exc
        if not token:
            raise CliError(f"the token file {path} is empty", ExitCode.AUTH)
        return Credentials(token, str(path))
    return None


TOKEN_HELP = (f"pass one with --token or {TOKEN_ENV} (`edgefleet token create` makes one; the "
              f"first admin token is in DATA_DIR/{TOKEN_FILE_NAME} on the server host)")


def missing_token_error(command: str, role: Role) -> CliError:
    """No token anywhere: say every place that was looked at."""
    places = ", ".join(str(p) for p in token_file_candidates())
    return CliError(
        f"no token in --token, {TOKEN_ENV} or {places}: `{command}` needs {ROLE_WORDS[role]}; "
        f"{TOKEN_HELP}",
        ExitCode.AUTH,
    )
