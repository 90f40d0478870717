"""The root of trust: where the agent reads its trust key from, and which files it refuses.

The trust key (the control plane's ``signing-key.pub``) decides what this device runs, so it
must not live beside what it protects: whoever can write the data dir (state, artifacts) must
not be able to choose the key those are checked against.

Invariants:
- The key is read at every start from a configured path: ``--trust-key FILE``, else the
  environment's ``EDGEFLEET_AGENT_TRUST_KEY``, else ``DEFAULT_PATH``
  (``/etc/edgefleet/trust-key.pub``). Nothing is remembered between runs.
- A path inside the data dir is refused, as given and once symlinks are resolved.
- A file writable by its group or by others, or one that is not a regular file, is refused:
  the root of trust is read-only to everyone but its owner. The mode is checked on the file
  that was opened, and the key is read from that same open file.
- ``DATA_DIR/trust-key.pub``, where earlier versions kept the key they were first given, is
  never read nor written; one still there is named in a warning and otherwise ignored.
- Every refusal is a ConfigurationError (``edgefleet-agent run`` exits 2) that says what to do.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.errors import ConfigurationError
from agent.trust import load_public_key

log = logging.getLogger(__name__)

ENV = "EDGEFLEET_AGENT_TRUST_KEY"
DEFAULT_PATH = Path("/etc/edgefleet/trust-key.pub")
#: Where versions before this one kept the trust key, inside the data dir.
LEGACY_NAME = "trust-key.pub"

_HOW = (f"install the control plane's DATA_DIR/signing-key.pub on this device outside the "
        f"agent's data dir, read-only (e.g. `install -D -m 0644 signing-key.pub "
        f"{DEFAULT_PATH}`), and pass --trust-key FILE or set {ENV} when it is elsewhere")


@dataclass(frozen=True)
class TrustKeySource:
    """A configured trust key path and what configured it (for messages)."""

    path: Path
    origin: str     # "--trust-key", "EDGEFLEET_AGENT_TRUST_KEY" or "default"

    def __str__(self) -> str:
        return f"{self.path} ({'the default' if self.origin == 'default' else self.origin})"


def locate(given: Path | str | None, environ: Mapping[str, str] = os.environ) -> TrustKeySource:
    """Where the trust key is: ``given`` (``--trust-key``), else ``$EDGEFLEET_AGENT_TRUST_KEY``,
    else ``DEFAULT_PATH``."""
    if given:
        return TrustKeySource(Path(given), "--trust-key")
    if environ.get(ENV):
        return TrustKeySource(Path(environ[ENV]), ENV)
    return TrustKeySource(DEFAULT_PATH, "default")


def read_trust_key(source: TrustKeySource, data_dir: Path) -> Ed25519PublicKey:
    """The ed25519 key at ``source``, once the file passed every check above.

    Raises ConfigurationError: the path is inside ``data_dir``, the file is missing or
    unreadable, not a regular file, writable by group or others, or not an ed25519 PEM key.
    """
    _refuse_inside(source, data_dir.resolve())
    try:
        # O_NONBLOCK: a FIFO planted at the path must not hang the start; the checks below run
        # on the file actually opened, and the key is read from it, so a swap cannot slip in.
        with os.fdopen(os.open(source.path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            _refuse_unsafe(source, os.fstat(f.fileno()))
            pem = f.read()
    except FileNotFoundError:
        raise ConfigurationError(f"no trust key at {source}: {_HOW}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the trust key {source}: {exc.strerror}; "
                                 f"{_HOW}") from exc
    try:
        return load_public_key(pem)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc}") from exc


def warn_about_legacy_key(data_dir: Path) -> None:
    """Name a ``DATA_DIR/trust-key.pub`` left by an earlier version: it is not used."""
    legacy = data_dir / LEGACY_NAME
    if legacy.exists():
        log.warning("ignoring %s, left by an earlier version: the trust key is read at every "
                    "start from --trust-key, %s or %s, never from the data dir; delete it",
                    legacy, ENV, DEFAULT_PATH)


def _refuse_inside(source: TrustKeySource, data_dir: Path) -> None:
    given = Path(os.path.abspath(source.path))
    for candidate in (given, source.path.resolve()):
        if candidate.is_relative_to(data_dir):
            raise ConfigurationError(
                f"the trust key {source} is inside the data dir {data_dir}: whoever can write "
                f"the data dir could replace it and have this device run anything; {_HOW}"
            )


def _refuse_unsafe(source: TrustKeySource, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ConfigurationError(f"the trust key {source} is not a regular file; {_HOW}")
    writers = [who for who, bit in (("its group", stat.S_IWGRP), ("others", stat.S_IWOTH))
               if st.st_mode & bit]
    if writers:
        raise ConfigurationError(
            f"the trust key {source} is writable by {' and '.join(writers)} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}): the root of trust must be read-only to everyone "
            f"but its owner; run `chmod go-w {source.path}`"
        )
