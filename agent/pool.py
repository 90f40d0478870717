"""``InterpreterPool``: the few interpreters of one model, lent to one request at a time.

An interpreter is not thread-safe, so a request borrows one for its set/invoke/get and gives it
back. The pool is last-in first-out: a single caller (the common case on a device) gets the same
interpreter every time, whose tensor arena is still in the CPU's cache, instead of cycling through
all of them.

Invariants:
- An interpreter is lent to at most one borrower at a time; ``borrow`` blocks while all are lent.
- Nothing is ever added beyond what the pool was built with, so it never grows.
- Borrowing and returning take no Python-level lock: a ``SimpleQueue`` of tokens (C code) counts
  the free interpreters and a ``deque`` (whose ``append``/``pop`` are atomic) holds them. A token
  is put only after its interpreter is back in the deque and taken before one is popped, so a
  borrower holding a token always finds an interpreter.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Iterable
from typing import Any


class InterpreterPool:
    def __init__(self, interpreters: Iterable[Any]) -> None:
        self._free: deque[Any] = deque()
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for interpreter in interpreters:
            self.give_back(interpreter)
        self.size = len(self._free)
        if not self.size:
            raise ValueError("an interpreter pool needs at least one interpreter")

    def borrow(self) -> Any:
        """An interpreter for the caller alone until it ``give_back``s it (which it must, in a
        ``finally``); waits while all are lent. Plain calls, not a context manager: this is on
        every inference's path."""
        self._tokens.get()
        return self._free.pop()

    def give_back(self, interpreter: Any) -> None:
        self._free.append(interpreter)
        self._tokens.put(None)
