"""What a long-running command (``server``, ``worker``) tells whoever started it.

Invariant: under ``-o json`` every line such a process writes to its stdout is one JSON object
``{"event": NAME, ...}`` (``admin_token``, ``listening``, ``ready``, ``stopped``); in table mode
the same moments are one human line each.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO


def announce(output: str, text: str, event: str, *, stream: TextIO | None = None,
             **fields: object) -> None:
    """``text`` for a person, or the JSON event line under ``-o json``; flushed at once."""
    line = json.dumps({"event": event, **fields}) if output == "json" else text
    print(line, file=stream or sys.stdout, flush=True)
