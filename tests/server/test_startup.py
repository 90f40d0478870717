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
