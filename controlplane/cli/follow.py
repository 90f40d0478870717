"""Following something the control plane is doing until it stands still.

``follow`` polls ``fetch`` every ``watch_interval_seconds`` until ``done(doc)``, calling
``show(doc)`` on each answer. A control plane that goes away for a while (a restart, a replica
leaving) does not end the watch; only an outage longer than ``watch_outage_seconds`` does (exit 3).
``timeout`` bounds the whole wait (exit 9).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode

Doc = dict[str, Any]


def follow(inv: Invocation, fetch: Callable[[], Doc], done: Callable[[Doc], bool],
           show: Callable[[Doc], None], *, timeout: float, what: str) -> Doc:
    doc = fetch()
    started = last_answer = time.monotonic()
    while not done(doc):
        show(doc)
        if time.monotonic() - started > timeout:
            raise CliError(f"gave up waiting for {what} after {timeout:.0f} s; it goes on on "
                           "the server: look again later", ExitCode.TIMED_OUT)
        time.sleep(inv.settings.watch_interval_seconds)
        try:
            doc = fetch()
            last_answer = time.monotonic()
        except CliError as exc:
            outage = time.monotonic() - last_answer
            if exc.code != ExitCode.UNREACHABLE or outage > inv.settings.watch_outage_seconds:
                raise
            inv.output.note(f"control plane unreachable for {outage:.0f} s; still watching "
                            f"(gives up after {inv.settings.watch_outage_seconds:.0f} s)")
    return doc
