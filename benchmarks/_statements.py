"""Counting the SQL statements this process sends to its databases, grouped by transaction.

``StatementLog`` listens to SQLAlchemy's ``before_cursor_execute`` (every statement, including the
explicit ``BEGIN`` the SQLite engine issues) and ``commit``/``rollback`` (the end of a
transaction) on every ``Engine``, and to the pool's ``connect`` and ``checkout`` on every
``Pool``, so it sees the in-process server's engine without reaching into it. Each transaction
is recorded with the thread that ran it and its statements reduced to ``(verb, table)``, which
is enough to say what the transaction was for.

Invariant: a transaction is recorded only when it ends, so ``reset()`` between phases never
splits one across two counts (the caller resets while the server is idle).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

_TABLE = re.compile(r'\b(?:FROM|UPDATE|INTO)\s+"?([A-Za-z_][A-Za-z0-9_]*)"?', re.IGNORECASE)
WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE"})
CONTROL_VERBS = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"})


def _reduce(statement: str) -> tuple[str, str]:
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    match = _TABLE.search(statement)
    return verb, match.group(1) if match else ""


@dataclass(frozen=True)
class Transaction:
    thread: str
    statements: tuple[tuple[str, str], ...]
    text: tuple[str, ...]

    @property
    def queries(self) -> int:
        return sum(1 for verb, _ in self.statements if verb not in CONTROL_VERBS)

    @property
    def writes(self) -> int:
        return sum(1 for verb, _ in self.statements if verb in WRITE_VERBS)

    @property
    def signature(self) -> str:
        """The statements in order, repeats folded: ``BEGIN + UPDATE devices x8``."""
        parts: list[list[Any]] = []
        for verb, table in self.statements:
            name = f"{verb} {table}".strip()
            if parts and parts[-1][0] == name:
                parts[-1][1] += 1
            else:
                parts.append([name, 1])
        return " + ".join(n if k == 1 else f"{n} x{k}" for n, k in parts) or "(empty)"


class StatementLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, list[str]] = {}
        self._done: list[Transaction] = []
        self._installed = False
        #: Connections opened and checked out of a pool since the last reset.
        self.connects = 0
        self.checkouts = 0

    def install(self) -> StatementLog:
        """Start listening on every Engine of this process (before the server creates its own)."""
        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._on_execute)
            event.listen(Engine, "commit", self._on_end)
            event.listen(Engine, "rollback", self._on_end)
            event.listen(Pool, "connect", self._on_connect)
            event.listen(Pool, "checkout", self._on_checkout)
            self._installed = True
        return self

    def remove(self) -> None:
        if self._installed:
            event.remove(Engine, "before_cursor_execute", self._on_execute)
            event.remove(Engine, "commit", self._on_end)
            event.remove(Engine, "rollback", self._on_end)
            event.remove(Pool, "connect", self._on_connect)
            event.remove(Pool, "checkout", self._on_checkout)
            self._installed = False

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            self._open.setdefault(threading.get_ident(), []).append(statement)

    def _on_end(self, conn: Any) -> None:
        with self._lock:
            texts = self._open.pop(threading.get_ident(), [])
            if texts:
                self._done.append(Transaction(
                    thread=threading.current_thread().name,
                    statements=tuple(_reduce(s) for s in texts),
                    text=tuple(texts),
                ))

    def _on_connect(self, *args: Any) -> None:
        with self._lock:
            self.connects += 1

    def _on_checkout(self, *args: Any) -> None:
        with self._lock:
            self.checkouts += 1

    def reset(self) -> None:
        with self._lock:
            self._open.clear()
            self._done.clear()
            self.connects = self.checkouts = 0

    def transactions(self) -> list[Transaction]:
        with self._lock:
            return list(self._done)


def by_signature(transactions: list[Transaction]) -> Counter[tuple[str, str]]:
    """How many transactions of each (thread pool, statement signature)."""
    return Counter((_pool(t.thread), t.signature) for t in transactions)


def _pool(thread: str) -> str:
    return re.sub(r"[_-]\d+$", "", thread)
