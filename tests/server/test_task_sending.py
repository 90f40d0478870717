"""Tasks are sent after the transaction that asked for them commits, and a broker that is down
loses no data: the commit stands, the failure is one log line, and the periodic tick retries.

The broker here is a Redis URL on a port where nothing listens, so every send that is attempted
fails and is logged: the log shows exactly which sends were attempted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from controlplane.celery_app import enqueue_after_commit
from controlplane.db import make_engine
from tests.support.net import free_port

down = Celery("down", broker=f"redis://127.0.0.1:{free_port()}/0")
down.conf.broker_connection_timeout = 1


@down.task(name="tests.noop")
def noop(x: int) -> int:
    return x


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
        caplog.at_level(logging.ERROR, logger="controlplane.celery_app"),
        Session(engine) as session,
        session.begin(),
    ):
        session.connection().exec_driver_sql("INSERT INTO t VALUES (1)")
        enqueue_after_commit(session, noop, 1)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar_one() == 1  # the commit stands
    (record,) = _attempted(caplog)
    assert "tests.noop(1,)" in record.getMessage()
    assert "periodic tick will retry" in record.getMessage()
    assert record.exc_info is None  # an expected outage: no traceback in the log


def test_nothing_is_sent_when_the_transaction_rolls_back(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Input tried: the transaction fails after asking for a task: the task must never be sent
    (a worker would look for rows that do not exist)."""
    with caplog.at_level(logging.ERROR, logger="controlplane.celery_app"):
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
