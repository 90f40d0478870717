"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL.

Each test starts from an empty database (not the shared migrated fixtures) because upgrading from
nothing is what is under test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from controlplane.db import (
    alembic_config,
    current_revision,
    head_revision,
    import_all_models,
    make_engine,
    upgrade,
)
from tests.support import db as testdb

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=testdb.BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables at all): a new SQLite file, or a new private PG database."""
    if request.param == "sqlite":
        yield testdb.sqlite_file_url(tmp_path / "empty.db")
        return
    server_url = request.getfixturevalue("postgres_server_url")
    url = testdb.create_database(server_url)
    try:
        yield url
    finally:
        testdb.drop_database(url, server_url)


def schema_diff(url: str, metadata: sa.MetaData | None = None) -> list[Any]:
    """Alembic's autogenerate diff between the live schema at ``url`` and ``metadata``."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata or import_all_models()))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migration_history_has_one_head() -> None:
    """Two migrations revising the same parent (a merge needed) would leave several heads."""
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"migration history has several heads: {heads}"


def test_upgrade_from_empty_matches_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert set(import_all_models().tables) <= table_names(empty_db_url)
    assert schema_diff(empty_db_url) == []


def test_schema_check_notices_a_model_column_missing_from_migrations(sqlite_url: str) -> None:
    """The comparison above is not vacuous: a model with one extra column must produce a diff."""
    drifted = sa.MetaData()
    for table in import_all_models().tables.values():
        table.to_metadata(drifted)
    next(iter(drifted.tables.values())).append_column(sa.Column("not_migrated", sa.Integer()))
    diff = schema_diff(sqlite_url, drifted)
    assert [d[0] for d in diff] == ["add_column"]
    assert diff[0][3].name == "not_migrated"


def test_upgrade_is_idempotent(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert schema_diff(empty_db_url) == []


def test_downgrade_to_base_then_upgrade_again(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    command.downgrade(alembic_config(empty_db_url), "base")
    assert current_revision(empty_db_url) is None
    assert table_names(empty_db_url) <= {"alembic_version"}
    upgrade(empty_db_url)
    assert current_revision(empty_db_url) == head_revision()
    assert schema_diff(empty_db_url) == []


def _cli_command() -> list[str]:
    """The installed ``edgefleet`` console script, or its entry point run by this interpreter."""
    script = Path(sys.executable).parent / "edgefleet"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from controlplane.cli.main import main; "
            "sys.exit(main())"]


def test_cli_db_upgrade_migrates_an_empty_database(empty_db_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli_upgrade() -> Any:
        result = subprocess.run(
            [*_cli_command(), "db", "upgrade", "--db", empty_db_url, "-o", "json"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    first = cli_upgrade()
    assert (first["from"], first["to"]) == (None, head_revision())
    assert current_revision(empty_db_url) == head_revision()
    assert schema_diff(empty_db_url) == []
    again = cli_upgrade()  # idempotent, and says so
    assert again["from"] == again["to"] == head_revision()


def _insert(url: str, table: str, row: dict[str, Any]) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.Table(table, sa.MetaData(), autoload_with=conn).insert(), [row])
    finally:
        engine.dispose()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_0005_keeps_windows_and_events_written_before_it_and_by_the_previous_release(
        empty_db_url: str) -> None:
    """Input tried: a window and an install event stored at revision 0004; after 0005 a window
    inserted without nonfinite (as a server of the previous release does during an upgrade);
    then a downgrade to 0004. The old rows read nonfinite 0 and no finding, the insert without
    nonfinite is stored with 0, and the downgrade keeps the rows."""
    config = alembic_config(empty_db_url)
    command.upgrade(config, "0004")
    at = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    _insert(empty_db_url, "devices", {"id": "d" * 36, "name": "cam", "labels": {},
                                      "secret_hash": "0" * 64, "enrolled_at": at,
                                      "desired_sequence": 0})
    window = {"device_id": "d" * 36, "model_name": "m", "version": "1", "variant": "float32",
              "sha256": "a" * 64, "start": at, "end": at, "count": 3, "errors": 0,
              "bucket_bounds_ms": [1.0], "bucket_counts": [3, 0], "latency_sum_ms": 1.5,
              "latency_max_ms": 0.9, "received_at": at}
    _insert(empty_db_url, "metric_windows", {**window, "window_id": "w-before"})
    _insert(empty_db_url, "install_events", {
        "device_id": "d" * 36, "model_name": "m", "version": "1", "variant": "float32",
        "sha256": "a" * 64, "state": "active", "message": "", "at": at, "received_at": at})
    upgrade(empty_db_url)
    _insert(empty_db_url, "metric_windows", {**window, "window_id": "w-old-release"})
    assert _rows(empty_db_url, "SELECT window_id, nonfinite FROM metric_windows "
                               "ORDER BY window_id") == [("w-before", 0), ("w-old-release", 0)]
    assert _rows(empty_db_url, "SELECT state, finding FROM install_events") == [("active", None)]
    command.downgrade(config, "0004")
    assert _rows(empty_db_url, "SELECT count(*) FROM metric_windows") == [(2,)]
    assert _rows(empty_db_url, "SELECT count(*) FROM install_events") == [(1,)]
