"""Server and worker start-up: schema, signing key ownership, the first admin token."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.config import Settings
from controlplane.registry.errors import SigningKeyError
from controlplane.server import prepare
from controlplane.startup import init_fleet, require_fleet_key, write_secret


def test_first_start_creates_key_and_admin_token_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path)
    plane = prepare(settings)
    plane.close()
    token = settings.admin_token_path.read_text()
    assert settings.admin_token_path.stat().st_mode & 0o777 == 0o600
    assert settings.signing_key_path.stat().st_mode & 0o777 == 0o600
    # The operator sees the token once, with where to find it again.
    printed = capsys.readouterr().out
    assert token.strip() in printed and str(settings.admin_token_path) in printed
    key = settings.signing_key_path.read_bytes()
    prepare(settings).close()  # second start: same key, no new token, nothing printed
    assert settings.admin_token_path.read_text() == token
    assert settings.signing_key_path.read_bytes() == key
    assert "admin token" not in capsys.readouterr().out


def test_first_start_under_json_output_prints_one_json_document_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    settings = Settings(data_dir=tmp_path)
    prepare(settings, output="json").close()
    lines = capsys.readouterr().out.splitlines()
    docs = [json.loads(line) for line in lines]  # every stdout line is JSON
    assert docs == [{"event": "admin_token", "token": settings.admin_token_path.read_text().strip(),
                     "path": str(settings.admin_token_path)}]


def test_a_fleet_whose_signing_key_went_missing_does_not_get_a_new_one(tmp_path: Path) -> None:
    """Input tried: an existing fleet database with its signing key deleted from the data dir."""
    settings = Settings(data_dir=tmp_path)
    prepare(settings).close()
    settings.signing_key_path.unlink()
    with pytest.raises(SigningKeyError, match="already serves a fleet"):
        prepare(settings)
    assert not settings.signing_key_path.exists()


def test_worker_without_the_shared_data_dir_refuses_to_start(tmp_path: Path) -> None:
    """Input tried: ``edgefleet worker`` pointed at an empty data dir (no signing key)."""
    plane, _ = init_fleet(Settings(data_dir=tmp_path / "fleet",
                                   database_url=f"sqlite:///{tmp_path}/x.db"))
    plane.close()
    settings = Settings(data_dir=tmp_path / "empty", database_url=f"sqlite:///{tmp_path}/x.db",
                        redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(SigningKeyError, match="--data-dir"):
        require_fleet_key(settings, "a worker")
    assert not (tmp_path / "empty" / "signing-key").exists()


def test_write_secret_is_0600_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "admin-token"
    write_secret(target, "first")
    write_secret(target, "second")
    assert target.read_text() == "second\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]


def test_init_is_idempotent_and_shows_the_admin_token_once(tmp_path: Path) -> None:
    """Input tried: `edgefleet init` twice on the same data dir and database."""
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/fleet.db")
    plane, first = init_fleet(settings)
    plane.close()
    assert first.schema_from is None and first.schema_to is not None
    assert first.admin_token and settings.admin_token_path.read_text().strip() == first.admin_token
    key = settings.signing_key_path.read_bytes()
    plane, again = init_fleet(settings)
    plane.close()
    assert again.admin_token is None
    assert again.schema_from == again.schema_to == first.schema_to
    assert again.key_id == first.key_id and settings.signing_key_path.read_bytes() == key


@pytest.mark.postgres
def test_concurrent_inits_on_postgres_issue_one_admin_token(
        pg_clean_url: str, tmp_path: Path) -> None:
    """Input tried: four `init`s at once on one new fleet (a job started twice, replicas racing
    at their first start): one signing key, exactly one admin token."""
    import threading

    import sqlalchemy as sa

    from controlplane.auth.models import OperatorToken
    from controlplane.db import make_engine

    settings = Settings(data_dir=tmp_path, database_url=pg_clean_url)
    barrier = threading.Barrier(4)
    tokens: list[str | None] = []
    errors: list[BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            plane, result = init_fleet(settings, migrate=False)
            plane.close()
            tokens.append(result.admin_token)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len([t for t in tokens if t]) == 1
    engine = make_engine(pg_clean_url)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(OperatorToken)) == 1
    engine.dispose()


def test_a_server_waits_for_the_schema_then_starts(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """Input tried: a server on an external database that nobody migrated yet; `init` (here the
    migration) runs two seconds later. The server logs what it waits for, then starts."""
    import logging
    import threading
    import time

    from controlplane.db import upgrade

    db = f"sqlite:///{tmp_path}/fleet.db"
    settings = Settings(data_dir=tmp_path / "data", database_url=db, start_wait_seconds=30,
                        start_poll_seconds=0.2)
    migrate = threading.Timer(1.0, upgrade, args=(db,))
    started = time.monotonic()
    migrate.start()
    with caplog.at_level(logging.WARNING, logger="edgefleet.startup"):
        plane = prepare(settings)
    plane.close()
    migrate.join()
    assert time.monotonic() - started >= 1.0
    waited = [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()]
    assert waited and "the database schema" in waited[0] and "edgefleet init" in waited[0]
    assert settings.admin_token_path.exists()   # the fleet's first start, made by this server


def test_a_server_that_waited_long_enough_says_why_it_gives_up(tmp_path: Path) -> None:
    """Input tried: an external database that stays unmigrated, with --wait 0s."""
    from controlplane.errors import SchemaError

    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/x.db",
                        start_wait_seconds=0)
    with pytest.raises(SchemaError, match="edgefleet init"):
        prepare(settings)
