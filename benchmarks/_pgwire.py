"""What actually crosses the wire to PostgreSQL: a libpq protocol trace of every psycopg
connection this process opens, read back as transactions.

SQLAlchemy's cursor events see the statements the code issues, but not what the driver and the
pool add on their own: psycopg's implicit ``BEGIN`` and ``COMMIT`` and the pool's pre-ping
``SELECT 1`` on every checkout. Each of those is a network round trip, so the hot-path figure
for PostgreSQL is counted here from the protocol itself: a round trip is one ``ReadyForQuery``
from the server, a statement one ``CommandComplete``, and a transaction ends when the server is
idle again (``ReadyForQuery I``).

Invariant: tracing starts in the Pool ``connect`` event, before a connection's first use, so a
traced connection's file holds its whole conversation after the handshake (the start-up itself
is not traced: count new connections with the pool's ``connect`` event); ``mark()`` and
``transactions(since)`` read only what was written in between.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
# One protocol message: direction, length, type, then its fields up to the next message (SQL
# text may span lines, so a message ends only where a line starts the next one).
_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)\t?(.*?)(?=^[FB]\t\d+\t|\Z)",
                      re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class WireTransaction:
    # SQL text of each completed statement, driver- and pool-added included.
    statements: tuple[str, ...]
    # Every exchange ending in ReadyForQuery, including those that complete no statement (psycopg
    # preparing a statement it has run often enough on this connection).
    round_trips: int


class PgWireTrace:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._files: list[tuple[Path, IO[str]]] = []
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> PgWireTrace:
        if not self._installed:
            self._dir.mkdir(parents=True, exist_ok=True)
            event.listen(Pool, "connect", self._on_connect)
            self._installed = True
        return self

    def remove(self) -> None:
        """Stop tracing new connections and close the files (call after the engine is disposed)."""
        if self._installed:
            event.remove(Pool, "connect", self._on_connect)
            self._installed = False
        with self._lock:
            for _, f in self._files:
                f.close()

    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        pgconn = getattr(dbapi_conn, "pgconn", None)
        if pgconn is None:  # not psycopg (SQLite): nothing crosses a wire
            return
        from psycopg import pq

        with self._lock:
            path = self._dir / f"conn-{len(self._files)}.trace"
            f = path.open("w")
            self._files.append((path, f))
        pgconn.trace(f.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    @property
    def connections(self) -> int:
        return len(self._files)

    def mark(self) -> dict[Path, int]:
        """Where each trace file ends now."""
        with self._lock:
            return {path: path.stat().st_size for path, _ in self._files}

    def transactions(self, since: dict[Path, int]) -> list[WireTransaction]:
        """Every transaction that ended after ``since`` (a ``mark()``), on every connection."""
        with self._lock:
            paths = [path for path, _ in self._files]
            for _, f in self._files:
                f.flush()
        found: list[WireTransaction] = []
        for path in paths:
            # Parsed from the start: a statement prepared earlier is named, not spelled out,
            # when it runs again.
            found += _parse(path.read_text(), since.get(path, 0))
        return found


PING = "(pool pre-ping: empty query)"


def _parse(text: str, since: int = 0) -> list[WireTransaction]:
    """One connection's trace as transactions ending after offset ``since``; a pre-ping joins
    the checkout it precedes."""
    named: dict[str, str] = {}
    pending = ""          # the statement the next CommandComplete finishes
    statements: list[str] = []
    round_trips = 0
    done = []
    for message in _MESSAGE.finditer(text):
        position = message.end()
        direction, kind, rest = message.group(1), message.group(2), message.group(3)
        args = _QUOTED.findall(rest)
        if direction == "F" and kind == "Query" and args:
            pending = args[0]
        elif direction == "F" and kind == "Parse" and len(args) >= 2:
            named[args[0]] = args[1]
            pending = args[1]
        elif direction == "F" and kind == "Bind" and len(args) >= 2:
            pending = named.get(args[1], pending)
        elif direction == "B" and kind == "CommandComplete":
            statements.append(pending)
        elif direction == "B" and kind == "EmptyQueryResponse":
            statements.append(PING)
        elif direction == "B" and kind == "ReadyForQuery":
            round_trips += 1
            # Idle again: the transaction (or a lone statement) ended. A lone ping (how the pool
            # checks a connection out) or a start-up is counted with the work that follows it.
            if rest.strip() == "I" and statements != [PING] * len(statements):
                if position > since:
                    done.append(WireTransaction(tuple(statements), round_trips))
                statements, round_trips = [], 0
    return done
