"""Session-wide fixtures: real PostgreSQL and Redis, migrated databases, sessions.

Servers come from ``EDGEFLEET_TEST_DATABASE_URL`` / ``EDGEFLEET_TEST_REDIS_URL`` when set, else are
started embedded once per session (see ``tests.support.servers``); nothing starts until a test
asks for it. Schemas are built only by Alembic. Tests that touch PostgreSQL are marked
``postgres`` automatically, so ``-m "not postgres"`` leaves them out.

Fixture map (cheapest first):
- ``sqlite_url``: a fresh migrated SQLite file in ``tmp_path`` (a copy of a per-session template).
- ``pg_clean_url``: the session's private PostgreSQL database, emptied before the test.
- ``db_url``: runs the test twice, ids ``sqlite`` and ``pg``, with one of the two above.
- ``session_factory``: a ``sessionmaker`` on ``db_url``.
- ``redis_db_url``: a Redis URL whose database was flushed before the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.backends import BACKENDS
from tests.support.servers import postgres_server, redis_server

# The control plane's dependencies (SQLAlchemy, psycopg, Alembic) are imported by the fixtures that
# use them, not here: the agent's tests run in a venv with only edgefleet[agent] (make test-agent).
if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

# Fixtures whose use means the test talks to PostgreSQL.
POSTGRES_FIXTURES = frozenset({"postgres_server_url", "pg_url", "pg_clean_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses PostgreSQL (directly or via ``db_url[pg]``) as ``postgres``."""
    for item in items:
        # Parametrized backends (``BACKENDS``) carry the mark already.
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Base URL of the session's PostgreSQL server, e.g. ``postgresql://postgres@127.0.0.1:5432/x``.

    ``$EDGEFLEET_TEST_DATABASE_URL`` when set, otherwise an embedded server started for this
    session and stopped at its end. Do not write to the database it names (it may be shared);
    use ``pg_url``/``pg_clean_url``, or ``tests.support.db.create_database`` for a private one.
    """
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the session's Redis server, e.g. ``redis://127.0.0.1:6379/0``, reachable over TCP.

    ``$EDGEFLEET_TEST_REDIS_URL`` when set, otherwise an embedded ``redis-server`` started for
    this session and stopped at its end. Its data is NOT cleaned between tests: use
    ``redis_db_url`` in tests.
    """
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_db_url(redis_url: str) -> str:
    """``redis_url`` with its database FLUSHed before the test: each test starts from empty Redis.

    Isolation is by flushing the one database number the URL names (``/0`` unless the env var says
    otherwise), so that database must be reserved for tests. Pub/sub channels are server-wide, but
    tests run one at a time.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_url(postgres_server_url: str) -> Iterator[str]:
    """URL of a private database ``edgefleet_test_<random>`` at Alembic head, for the session.

    Created (and migrated once) on first use, dropped at session end. Rows persist between tests:
    use ``pg_clean_url`` for an empty one.
    """
    from tests.support import db as testdb

    url = testdb.create_migrated_database(postgres_server_url)
    try:
        yield url
    finally:
        testdb.drop_database(url, postgres_server_url)


@pytest.fixture
def pg_clean_url(pg_url: str) -> str:
    """``pg_url`` with every table TRUNCATEd (RESTART IDENTITY CASCADE) before the test.

    Fails with ``LockNotAvailable`` rather than hanging if an earlier test leaked an open
    transaction.
    """
    from tests.support import db as testdb

    testdb.truncate_all(pg_url)
    return pg_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at Alembic head, made once per session; tests get copies (``sqlite_url``)."""
    from tests.support import db as testdb

    return testdb.make_sqlite_template(tmp_path_factory.mktemp("sqlite-template") / "template.db")


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh migrated SQLite database file ``tmp_path/edgefleet.db`` for this test."""
    from tests.support import db as testdb

    return testdb.copy_sqlite(sqlite_template, tmp_path / "edgefleet.db")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """A clean migrated database for this test; the test runs once on SQLite, once on PostgreSQL.

    The ``pg`` run is marked ``postgres``. Select one backend with ``-k sqlite`` / ``-k pg``.
    """
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("pg_clean_url")
    return url


@pytest.fixture
def session_factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    """``make_session_factory(make_engine(db_url))``; the engine is disposed after the test."""
    from controlplane.db import make_engine, make_session_factory

    engine = make_engine(db_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()
