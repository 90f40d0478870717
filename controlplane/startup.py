"""Bringing up a fleet's shared state, and starting processes in any order.

``init_fleet`` is ``edgefleet init``: migrate the schema, create the fleet's signing key and its
first admin token. It is idempotent: run again (or by several processes at once) it changes
nothing and issues no second token. Only a fleet without an admin token yet may get a new
signing key; an existing fleet whose key is missing from the data dir is refused, never re-keyed
(its agents trust the old key).

Servers and workers started before the database, Redis or ``init`` are ready *wait* for them
(``wait_until``), saying in one log line what they wait for, up to ``Settings.start_wait_seconds``;
then they give up with the error of what was still missing. Under systemd, compose or Kubernetes
the start order therefore does not matter; ``init`` is still what creates a new fleet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from controlplane.app import ControlPlane
from controlplane.auth.services import ensure_admin_token, fleet_initialized
from controlplane.config import Settings
from controlplane.db import (
    check_schema,
    make_engine,
    make_session_factory,
    reaching,
    transaction,
    upgrade,
)
from controlplane.errors import ConfigurationError, UnavailableError
from controlplane.registry.errors import SigningKeyError
from controlplane.registry.signing import Signer
from protos.contract.files import replace_atomically

log = logging.getLogger("edgefleet.startup")
T = TypeVar("T")


@dataclass(frozen=True)
class InitResult:
    schema_from: str | None
    schema_to: str | None
    key_id: str
    public_key_path: Path
    admin_token: str | None       # set only when this call issued the first admin token
    admin_token_path: Path


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte, crash-safely."""
    replace_atomically(path, (text + "\n").encode(), mode=0o600)


def init_fleet(settings: Settings, *, migrate: bool = True) -> tuple[ControlPlane, InitResult]:
    """Schema (when ``migrate``), signing key, first admin token; returns the wired plane.

    Raises DependencyUnreachableError (no database), SchemaError (``migrate=False`` on a schema
    that is not at head), SigningKeyError (an existing fleet's key is missing or unusable).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    revisions: dict[str, str | None]
    if migrate:
        revisions = upgrade(settings.db_url)
    else:
        check_schema(settings.db_url)
        revisions = {"from": None, "to": None}
    try:
        plane = ControlPlane.from_settings(settings, create_key=not _fleet_exists(settings))
    except SigningKeyError as exc:
        raise SigningKeyError(
            f"{exc}. This database already serves a fleet whose agents trust its signing key: "
            f"point --data-dir at the data dir holding signing-key (shared by every server and "
            f"worker), or restore the key from backup"
        ) from exc
    try:
        with plane.tx() as s:
            token = ensure_admin_token(s)
            if token:
                # Written before the transaction commits: if writing fails nothing is committed
                # and the next start tries again, so the first admin token cannot be lost.
                write_secret(settings.admin_token_path, token)
    except BaseException:
        plane.close()
        raise
    return plane, InitResult(
        schema_from=revisions["from"], schema_to=revisions["to"], key_id=plane.signer.key_id,
        public_key_path=settings.signing_public_key_path.resolve(), admin_token=token,
        admin_token_path=settings.admin_token_path.resolve(),
    )


def require_fleet_key(settings: Settings, who: str) -> Signer:
    """The fleet's signing key for a process that must never create one (a worker, a replica).

    Raises SigningKeyError saying where the key is expected and what creates it.
    """
    if not _fleet_exists(settings):
        raise SigningKeyError(
            f"this fleet is not initialised yet: run `edgefleet init --db URL --data-dir DIR` "
            f"(or start `edgefleet server` once); {who} never creates the fleet's key")
    try:
        return Signer.load_or_create(settings.signing_key_path, settings.signing_public_key_path,
                                     create=False)
    except SigningKeyError as exc:
        raise SigningKeyError(
            f"{exc}: {who} signs with the fleet's key and reads its artifacts; pass --data-dir "
            f"pointing at the data dir the servers use (shared by every server and worker)"
        ) from exc


def wait_until(
    ready: Callable[[], T],
    *,
    what: str,
    settings: Settings,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``ready`` until it returns without raising ConfigurationError or UnavailableError
    (what a dependency that is not up yet raises), for at most ``settings.start_wait_seconds``;
    return its result. Each new reason to wait is logged once.

    Raises the last such error once the time is up (at once when the wait is 0).
    """
    deadline = clock() + settings.start_wait_seconds
    said = ""
    while True:
        try:
            return ready()
        except (ConfigurationError, UnavailableError) as exc:
            left = deadline - clock()
            if left <= 0:
                raise
            if str(exc) != said:
                said = str(exc)
                log.warning("waiting for %s (up to %.0f s more): %s", what, left, exc)
            sleep(min(settings.start_poll_seconds, left))


def _fleet_exists(settings: Settings) -> bool:
    """Whether the database already serves a fleet (its first admin token was issued)."""
    engine = make_engine(settings.db_url)
    try:
        with reaching(settings.db_url), transaction(make_session_factory(engine)) as s:
            return fleet_initialized(s)
    finally:
        engine.dispose()
