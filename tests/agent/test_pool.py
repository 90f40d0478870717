"""InterpreterPool: last in, first out; one borrower per interpreter; a borrower waits."""

from __future__ import annotations

import threading

import pytest

from agent.pool import InterpreterPool


def test_the_interpreter_given_back_last_is_lent_first():
    pool = InterpreterPool(["a", "b", "c"])
    first = pool.borrow()
    pool.give_back(first)
    assert [pool.borrow() for _ in range(3)] == [first, "b", "a"]


def test_a_borrower_waits_while_every_interpreter_is_lent():
    """Input tried: a one-interpreter pool lent out; a second thread borrows. It gets the
    interpreter only after it was given back (the flag is set before the give-back)."""
    pool = InterpreterPool(["only"])
    held = pool.borrow()
    given_back = threading.Event()
    seen: list[tuple[str, bool]] = []

    def borrower() -> None:
        got = pool.borrow()
        seen.append((got, given_back.is_set()))
        pool.give_back(got)

    thread = threading.Thread(target=borrower)
    thread.start()
    given_back.set()
    pool.give_back(held)
    thread.join(10)
    assert seen == [("only", True)]


def test_concurrent_borrowers_never_share_an_interpreter():
    pool = InterpreterPool([object(), object()])
    in_use: set[int] = set()
    lock = threading.Lock()
    shared: list[int] = []

    def worker() -> None:
        for _ in range(500):
            it = pool.borrow()
            with lock:
                if id(it) in in_use:
                    shared.append(id(it))
                in_use.add(id(it))
            with lock:
                in_use.discard(id(it))
            pool.give_back(it)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared == []
    assert len({id(pool.borrow()), id(pool.borrow())}) == 2   # both are back, none lost


def test_an_empty_pool_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        InterpreterPool([])
