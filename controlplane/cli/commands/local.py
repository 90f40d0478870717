"""``server``, ``worker``, ``db upgrade``, ``demo``: run parts of the control plane here.

Their implementations live elsewhere in ``controlplane`` and pull in the server extras, so they
are imported only when the command runs; a missing piece becomes a clear ``CliError``.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
from controlplane.config import Settings, redact_url


def load_entry_point(module: str, attribute: str, command: str) -> Any:
    """``module.attribute``, imported now; CliError when it or a dependency is missing."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if missing == "controlplane" or missing.startswith("controlplane."):
            raise CliError(
                f"`edgefleet {command}` is not available in this installation ({missing} is "
                "missing): reinstall edgefleet"
            ) from exc
        raise CliError(
            f"`edgefleet {command}` needs the Python package {missing!r}, which is not "
            "installed: pip install 'edgefleet[controlplane]'"
        ) from exc
    try:
        return getattr(loaded, attribute)
    except AttributeError as exc:
        raise CliError(
            f"`edgefleet {command}` is not available in this installation "
            f"({module}.{attribute} is missing): reinstall edgefleet"
        ) from exc


def _launch(launcher: Any, *args: Any, **kwargs: Any) -> int:
    """Run a launcher and return its exit code (``None``, a plain return, counts as success).

    A launcher may stop with ``SystemExit("message")`` for a setup mistake; that message is
    reported like every other CLI error.
    """
    try:
        result = _call(launcher, *args, **kwargs)
    except SystemExit as exc:
        return int(exc.code or 0)  # _call turned a message into a CliError: this is a code
    return result if isinstance(result, int) else 0


def _call(launcher: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a launcher and return what it returns; ``SystemExit("message")`` becomes a CliError,
    and so does a database or Redis that cannot be reached (exit code UNREACHABLE)."""
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import OperationalError

    try:
        return launcher(*args, **kwargs)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            raise CliError(exc.code) from exc
        raise
    except BrokerError as exc:  # raised at start only, worded for the operator
        raise CliError(str(exc), ExitCode.UNREACHABLE) from exc
    except OperationalError as exc:
        # Raised before anything was served or written: the database refused the connection.
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise CliError(
            f"cannot use the database: {reason}. Is it running, and are --db / EDGEFLEET_DB "
            f"right?",
            ExitCode.UNREACHABLE,
        ) from exc


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from flags and environment; a malformed address or URL is a usage error."""
    settings = _raw_settings(args)
    if problems := settings.problems():
        raise CliError("; ".join(problems), ExitCode.USAGE)
    return settings


def _raw_settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        listen=getattr(args, "listen", None),
        database_url=getattr(args, "db", None),
        redis_url=getattr(args, "redis", None),
        metrics_port=getattr(args, "metrics_port", None),
        tls_cert=getattr(args, "tls_cert", None),
        tls_key=getattr(args, "tls_key", None),
    )


def server(args: argparse.Namespace, inv: Invocation) -> int:
    serve = load_entry_point("controlplane.server", "serve", inv.command)
    return _launch(serve, _settings(args), output=inv.output.format)


def worker(args: argparse.Namespace, inv: Invocation) -> int:
    run_worker = load_entry_point("controlplane.worker", "run_worker", inv.command)
    return _launch(run_worker, _settings(args), output=inv.output.format)


def db_upgrade(args: argparse.Namespace, inv: Invocation) -> int:
    upgrade = load_entry_point("controlplane.db", "upgrade", inv.command)
    settings = _settings(args)
    revisions = _call(upgrade, settings.db_url)
    doc = {"database": redact_url(settings.db_url), **revisions}
    inv.output.result(doc, _upgrade_text)
    return 0


def _upgrade_text(doc: dict[str, Any]) -> str:
    where = doc["database"]
    if doc["from"] == doc["to"]:
        return f"database already at the newest schema ({doc['to']}): {where}"
    return f"database upgraded from {doc['from'] or 'empty'} to {doc['to']}: {where}"


def demo(args: argparse.Namespace, inv: Invocation) -> int:
    run_demo = load_entry_point("controlplane.demo", "run_demo", inv.command)
    return _launch(run_demo, data_dir=args.data_dir, devices=args.devices, keep=args.keep,
                   output=inv.output.format)
