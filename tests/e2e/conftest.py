"""What the whole-system tests share: a control plane of real processes on PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import Fleet, command, fleet, wait_for
from tests.support import db as testdb
from tests.support.net import free_port


@pytest.fixture
def control_plane(postgres_server_url: str, redis_db_url: str,
                  tmp_path: Path) -> Iterator[tuple[Fleet, Path]]:
    """``edgefleet server`` and ``edgefleet worker`` as processes on a new migrated PostgreSQL
    database and Redis (float32 variants only, for speed): the fleet and the server's data
    dir (its ``signing-key.pub`` is the agents' trust key)."""
    db = testdb.create_migrated_database(postgres_server_url)
    data = tmp_path / "server-data"
    env = {"EDGEFLEET_VARIANT_KINDS": "float32"}
    try:
        with fleet(tmp_path, f"127.0.0.1:{free_port()}") as f:
            f.spawn("server", [command("edgefleet"), "server", "--data-dir", str(data),
                               "--listen", f.server, "--db", db, "--redis", redis_db_url],
                    env=env)
            token_file = data / "admin-token"
            wait_for("the admin token", lambda: token_file.exists() or None, check=f.alive)
            f.spawn("worker", [command("edgefleet"), "worker", "--data-dir", str(data),
                               "--db", db, "--redis", redis_db_url], env=env)
            f.env["EDGEFLEET_TOKEN"] = token_file.read_text().strip()
            wait_for("the server to answer",
                     lambda: f.cli("model", "list", check=False).returncode == 0 or None,
                     check=f.alive)
            yield f, data
    finally:
        testdb.drop_database(db)


