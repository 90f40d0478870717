"""The shared fixtures deliver what conftest promises: reachable servers, clean migrated databases.

These run against the same real servers every other test uses (embedded or from the env vars).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from controlplane.auth.models import OperatorToken
from controlplane.db import import_all_models, make_engine, utcnow
from tests.support import db as testdb
from tests.support.net import free_port, port_is_open, wait_for_port


def _add_token(factory: sessionmaker[Session], token_id: str) -> None:
    with factory() as session, session.begin():
        session.add(OperatorToken(id=token_id, secret_hash="0" * 64, role="viewer",
                                  description="fixture check", created_at=utcnow()))


def _token_count(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(OperatorToken)).scalar_one()
    finally:
        engine.dispose()


# Two tests in a row write the same primary key: the second passes only if the first's row is gone.
@pytest.mark.parametrize("attempt", [1, 2])
def test_db_url_is_migrated_and_empty_for_every_test(
    session_factory: sessionmaker[Session], db_url: str, attempt: int
) -> None:
    engine = make_engine(db_url)
    try:
        assert set(import_all_models().tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert _token_count(db_url) == 0
    _add_token(session_factory, "same-id")
    assert _token_count(db_url) == 1


def test_sqlite_copies_are_independent(sqlite_template: Path, tmp_path: Path) -> None:
    first = testdb.copy_sqlite(sqlite_template, tmp_path / "a.db")
    second = testdb.copy_sqlite(sqlite_template, tmp_path / "b.db")
    engine = make_engine(first)
    try:
        _add_token(sessionmaker(engine), "only-in-first")
    finally:
        engine.dispose()
    assert (_token_count(first), _token_count(second)) == (1, 0)


def test_drop_database_refuses_a_name_without_the_test_prefix(postgres_server_url: str) -> None:
    """Input: the server's own ``postgres`` database, which must never be dropped."""
    with pytest.raises(ValueError, match="refusing to drop"):
        testdb.drop_database(testdb.with_database(postgres_server_url, "postgres"))


def test_redis_db_url_starts_empty(redis_db_url: str) -> None:
    client = redis.Redis.from_url(redis_db_url)
    try:
        assert client.dbsize() == 0
        client.set("edgefleet:fixture-check", b"1")  # the next test's flush must remove it
        assert client.dbsize() == 1
    finally:
        client.close()


def test_redis_db_url_flushes_what_the_previous_test_left(redis_db_url: str) -> None:
    client = redis.Redis.from_url(redis_db_url)
    try:
        assert client.get("edgefleet:fixture-check") is None
    finally:
        client.close()


_CHILD = """
import sys, psycopg, redis
with psycopg.connect(sys.argv[1]) as conn:
    assert conn.execute("select 1").fetchone() == (1,)
assert redis.Redis.from_url(sys.argv[2]).ping()
print("ok")
"""


def test_servers_are_reachable_from_another_process(pg_url: str, redis_url: str) -> None:
    """``edgefleet server``/``worker`` subprocesses reach the test servers by URL over TCP."""
    assert "127.0.0.1" in pg_url and "127.0.0.1" in redis_url
    result = subprocess.run([sys.executable, "-c", _CHILD, pg_url, redis_url],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr


def test_wait_for_port_returns_once_something_listens() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        wait_for_port("127.0.0.1", port, timeout=10)
        assert port_is_open("127.0.0.1", port)


def test_wait_for_port_raises_when_nothing_listens() -> None:
    """Input: a port nobody listens on."""
    port = free_port()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        wait_for_port("127.0.0.1", port, timeout=0.2)
