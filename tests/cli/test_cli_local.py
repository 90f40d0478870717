"""``server``, ``worker``, ``db upgrade``, ``demo``: arguments reach the launchers as Settings,
exit codes come back, and a missing piece is a clear error instead of a traceback.

The launchers themselves belong to other modules and are tested there; here each is replaced
by a recording stand-in module so that only the CLI's plumbing is under test.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli.commands.local import load_entry_point
from controlplane.cli.errors import CliError
from controlplane.config import Settings
from controlplane.errors import ConfigurationError

Runner = Callable[..., Any]


class Recorder:
    def __init__(self, result: Any = 0) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.result = result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        return self.result


def _install(monkeypatch: pytest.MonkeyPatch, module: str, attribute: str,
             launcher: Callable[..., Any]) -> None:
    stand_in = types.ModuleType(module)
    setattr(stand_in, attribute, launcher)
    monkeypatch.setitem(sys.modules, module, stand_in)


def test_server_builds_settings_from_its_flags(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = Recorder(result=0)
    _install(monkeypatch, "controlplane.server", "serve", serve)
    result = run("server", "--data-dir", "state", "--listen", "0.0.0.0:9000", "--db",
                 "postgresql://u@db/edgefleet", "--redis", "redis://r:6379/0",
                 "--metrics-port", "9100")
    assert result.code == 0
    ((settings,), kwargs) = serve.calls[0]
    assert kwargs == {"output": "table"}
    assert run("server", "-o", "json").code == 0
    assert serve.calls[1][1] == {"output": "json"}  # the server then speaks JSON lines
    assert isinstance(settings, Settings)
    assert (settings.data_dir, settings.listen, settings.database_url, settings.redis_url,
            settings.metrics_port) == (Path("state"), "0.0.0.0:9000",
                                       "postgresql://u@db/edgefleet", "redis://r:6379/0", 9100)


def test_server_without_flags_takes_the_environment_then_defaults(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = Recorder(result=None)
    _install(monkeypatch, "controlplane.server", "serve", serve)
    monkeypatch.setenv("EDGEFLEET_REDIS", "redis://from-env")
    assert run("server").code == 0
    ((settings,), _kwargs) = serve.calls[0]
    assert (settings.redis_url, settings.listen, settings.data_dir) == (
        "redis://from-env", "127.0.0.1:7443", Path("edgefleet-data"))


def test_server_exit_code_is_passed_through(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, "controlplane.server", "serve", Recorder(result=3))
    assert run("server").code == 3


def test_worker_gets_store_settings(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    run_worker = Recorder()
    _install(monkeypatch, "controlplane.worker", "run_worker", run_worker)
    assert run("worker", "--db", "sqlite:///x.db", "--redis", "redis://r", "-o", "json").code == 0
    ((settings,), kwargs) = run_worker.calls[0]
    assert kwargs == {"output": "json"}  # the worker leaves Celery's banner out then
    assert (settings.database_url, settings.redis_url) == ("sqlite:///x.db", "redis://r")


def test_db_upgrade_gets_the_database_url_in_force(
    run: Runner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    upgrade = Recorder(result={"from": None, "to": "0002"})  # what the real one returns
    _install(monkeypatch, "controlplane.db", "upgrade", upgrade)
    assert run("db", "upgrade", "--data-dir", "state").code == 0
    assert upgrade.calls[0][0] == (f"sqlite:///{tmp_path / 'state' / 'edgefleet.db'}",)
    result = run("db", "upgrade", "--db", "postgresql://u:secret@db/edgefleet")
    assert upgrade.calls[1][0] == ("postgresql+psycopg://u:secret@db/edgefleet",)
    assert "secret" not in result.out + result.err  # the password is not echoed
    assert "postgresql+psycopg://u:***@db/edgefleet" in result.out


def test_demo_gets_its_options(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    run_demo = Recorder(result=0)
    _install(monkeypatch, "controlplane.demo", "run_demo", run_demo)
    assert run("demo").code == 0
    assert run_demo.calls[0] == ((), {"data_dir": None, "devices": 3, "keep": False,
                                      "output": "table"})
    assert run("demo", "--devices", "5", "--keep", "--data-dir", "d", "-o", "json").code == 0
    assert run_demo.calls[1] == ((), {"data_dir": Path("d"), "devices": 5, "keep": True,
                                      "output": "json"})


@pytest.mark.parametrize(
    ("argv", "module"),
    [(["server"], "controlplane.server"), (["worker"], "controlplane.worker"),
     (["db", "upgrade"], "controlplane.db"), (["demo"], "controlplane.demo")],
)
def test_missing_launcher_module_is_a_clear_error(
    run: Runner, monkeypatch: pytest.MonkeyPatch, argv: list[str], module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if absent
    result = run(*argv)
    assert result.code == 1
    assert f"`edgefleet {' '.join(argv)}` is not available in this installation" in result.err
    assert "Traceback" not in result.err


def test_launcher_module_without_its_function_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "controlplane.demo", types.ModuleType("controlplane.demo"))
    with pytest.raises(CliError, match=r"controlplane\.demo\.run_demo is missing"):
        load_entry_point("controlplane.demo", "run_demo", "demo")


def test_missing_third_party_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "launcher_needing_extras.py").write_text(
        "import edgefleet_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CliError) as caught:
        load_entry_point("launcher_needing_extras", "serve", "server")
    assert "'edgefleet_dependency_that_is_not_installed', which is not installed" in \
        caught.value.message
    assert "pip install 'edgefleet[controlplane]'" in caught.value.message


def test_launcher_stopping_with_a_message_is_reported_as_an_error(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_worker(settings: Settings, *, output: str) -> int:
        raise ConfigurationError("edgefleet worker needs --redis URL")

    _install(monkeypatch, "controlplane.worker", "run_worker", run_worker)
    result = run("worker")
    assert result.code == 1
    assert result.err == "edgefleet: error: edgefleet worker needs --redis URL\n"


@pytest.mark.parametrize("command", [["db", "upgrade"], ["server"]])
def test_a_database_nobody_answers_is_exit_3_with_what_to_check(
    run: Runner, free_address: str, tmp_path: Path, command: list[str]
) -> None:
    """Input tried: --db pointing at a port where no PostgreSQL listens (the real launchers run)."""
    wait = ["--wait", "0s"] if command == ["server"] else []
    result = run(*command, "--db", f"postgresql://postgres@{free_address}/edgefleet",
                 "--data-dir", str(tmp_path / "data"), *wait)
    assert result.code == 3
    assert "cannot use the database" in result.err and "--db" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "data" / "admin-token").exists()
    assert not (tmp_path / "data" / "signing-key").exists()  # no key for a fleet not reached


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["server", "--listen", "127.0.0.1:99999"], "--listen"),
        (["server", "--listen", "no-port"], "--listen"),
        (["server", "--db", "garbage"], "PostgreSQL"),
        (["db", "upgrade", "--db", "mysql://u@h/x"], "PostgreSQL"),
        (["worker", "--db", "postgresql://u@h/x", "--redis", "garbage"], "Redis URL"),
        (["server", "--tls-cert", "cert.pem"], "go together"),
    ],
)
def test_malformed_addresses_and_urls_are_usage_errors(
    run: Runner, tmp_path: Path, args: list[str], complaint: str
) -> None:
    """Input tried: a port above 65535, an address without a port, a database URL that is not
    one, a MySQL URL, a Redis URL that is not one, a TLS certificate without its key."""
    result = run(*args, "--data-dir", str(tmp_path / "data"))
    assert result.code == 2
    assert complaint in result.err and "Traceback" not in result.err
    assert not (tmp_path / "data").exists()  # refused before anything was created


def test_a_port_in_use_ends_the_server_with_what_to_do(run: Runner, tmp_path: Path) -> None:
    """Input tried: --listen on a port another process holds, and --metrics-port likewise."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run("server", "--listen", addr, "--data-dir", str(tmp_path / "a"))
        assert result.code == 1
        assert "cannot listen on" in result.err and "--listen" in result.err
        assert "Traceback" not in result.err
        port = str(taken.getsockname()[1])
        result = run("server", "--listen", "127.0.0.1:0", "--metrics-port", port,
                     "--data-dir", str(tmp_path / "b"))
        assert result.code == 1
        assert "--metrics-port" in result.err and "Traceback" not in result.err


def test_a_worker_whose_redis_nobody_answers_is_exit_3(
    run: Runner, free_address: str, tmp_path: Path
) -> None:
    """Input tried: an initialised fleet and --redis on a port where nothing listens (the real
    worker launcher runs: it must not report ready and retry forever)."""
    db = f"sqlite:///{tmp_path}/fleet.db"
    assert run("init", "--db", db, "--data-dir", str(tmp_path / "data")).code == 0
    result = run("worker", "--db", db, "--redis", f"redis://{free_address}/0",
                 "--data-dir", str(tmp_path / "data"), "--wait", "0s")
    assert result.code == 3
    assert "cannot reach Redis" in result.err and "--redis" in result.err
    assert "Traceback" not in result.err
