"""A transaction that loses to a concurrent one is run again, on real SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from controlplane.db import (
    ATTEMPTS,
    READ_ONLY,
    is_contention,
    make_engine,
    retry_on_contention,
)


def _scratch(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS scratch"))
        conn.execute(sa.text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO scratch VALUES (1, 0), (2, 0)"))
    return engine


def test_sqlite_write_transactions_take_the_write_lock_at_begin(sqlite_url: str) -> None:
    """Input tried: two threads each doing 25 read-then-write increments, with no retry at all.

    A write transaction begins IMMEDIATE, so the second writer waits for the lock (busy timeout)
    instead of reading a snapshot that goes stale and failing with "database is locked"."""
    engine = _scratch(sqlite_url)
    errors: list[BaseException] = []

    def increments() -> None:
        try:
            for _ in range(25):
                with engine.connect() as conn, conn.begin():
                    n = conn.execute(sa.text("SELECT n FROM scratch WHERE id = 1")).scalar_one()
                    conn.execute(sa.text("UPDATE scratch SET n = :n WHERE id = 1"), {"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=increments) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM scratch WHERE id = 1")).scalar_one() == 50
    engine.dispose()


def test_a_stale_sqlite_snapshot_is_retried_not_reported(sqlite_url: str) -> None:
    """Input tried: a read-only (deferred) transaction reads, another commits a write, then the
    first writes after all.

    SQLite refuses the first writer at once ("database is locked", whatever the busy timeout);
    the whole transaction runs again and both increments land."""
    engine = _scratch(sqlite_url)
    deferred = engine.execution_options(**{READ_ONLY: True})
    attempts = 0

    def work() -> None:
        nonlocal attempts
        attempts += 1
        with deferred.connect() as a, a.begin():
            a.execute(sa.text("SELECT n FROM scratch WHERE id = 1")).scalar_one()
            if attempts == 1:
                with engine.connect() as b, b.begin():
                    b.execute(sa.text("UPDATE scratch SET n = n + 1 WHERE id = 1"))
            a.execute(sa.text("UPDATE scratch SET n = n + 10 WHERE id = 1"))

    retry_on_contention(work)
    assert attempts == 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM scratch WHERE id = 1")).scalar_one() == 11
    engine.dispose()


def test_a_postgres_deadlock_is_contention(pg_clean_url: str) -> None:
    """Input tried: two transactions lock two rows in opposite orders; PostgreSQL kills one
    with deadlock_detected, which ``is_contention`` recognises (so it is retried)."""
    engine = _scratch(pg_clean_url)
    both_hold_first_lock = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def lock(first: int, second: int) -> None:
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(sa.text("UPDATE scratch SET n = n + 1 WHERE id = :i"), {"i": first})
                both_hold_first_lock.wait()
                conn.execute(sa.text("UPDATE scratch SET n = n + 1 WHERE id = :i"), {"i": second})
        except sa.exc.DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lock, args=order) for order in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 1 and is_contention(errors[0])
    engine.dispose()


def test_other_errors_are_not_retried(sqlite_url: str) -> None:
    """Input tried: a statement on a missing table: a bug, raised on the first attempt."""
    engine = make_engine(sqlite_url)
    attempts = 0

    def work() -> None:
        nonlocal attempts
        attempts += 1
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))

    with pytest.raises(sa.exc.OperationalError) as err:
        retry_on_contention(work)
    assert attempts == 1 and not is_contention(err.value)
    engine.dispose()


def test_contention_that_never_ends_is_raised_after_the_last_attempt() -> None:
    """Input tried: a transaction that loses every time; the caller sees the error."""
    attempts = 0
    locked = sa.exc.OperationalError("UPDATE x", {}, Exception("database is locked"))

    def work() -> None:
        nonlocal attempts
        attempts += 1
        raise locked

    with pytest.raises(sa.exc.OperationalError):
        retry_on_contention(work)
    assert attempts == ATTEMPTS
