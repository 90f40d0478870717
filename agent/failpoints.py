"""Named points in the install path where a test can kill the agent, to prove crash safety.

``EDGEFLEET_AGENT_FAILPOINTS=NAME[,NAME...]`` (read once, at import) arms points; an armed
``hit(NAME)`` sends the process SIGKILL at once, the way a power cut or the OOM killer ends a
device's agent: no handler, no flush, no cleanup. Unset (every deployment), ``hit`` is a set
lookup and does nothing.

Points, in install order: ``chunk`` (a chunk reached the part file, the download is not
complete), then ``download``, ``verify``, ``load``, ``validate``, ``prove`` (that step of an
update is done, the next not begun: ``Installer(failpoints=True)``), ``flip`` (the live table
flipped, the data dir not yet written), ``persist`` (the data dir written, the server not yet
told).
"""

from __future__ import annotations

import logging
import os
import signal

ENV = "EDGEFLEET_AGENT_FAILPOINTS"
POINTS = frozenset({"chunk", "download", "verify", "load", "validate", "prove", "flip",
                    "persist"})

log = logging.getLogger(__name__)


def _armed(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = names - POINTS
    if unknown:
        raise ValueError(f"{ENV}: unknown failpoint(s) {sorted(unknown)}; "
                         f"known: {sorted(POINTS)}")
    return names


ARMED = _armed(os.environ.get(ENV, ""))


def hit(name: str) -> None:
    """SIGKILL this process if ``name`` is armed."""
    if name in ARMED:
        log.critical("failpoint %s: killing the agent (SIGKILL)", name)
        os.kill(os.getpid(), signal.SIGKILL)
