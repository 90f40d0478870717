"""``init``, ``server``, ``worker``, ``db upgrade``, ``demo``: run parts of the control plane here.

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

    A launcher stops with a control-plane error for a setup mistake (``ConfigurationError``), a
    database or Redis that does not answer (``DependencyUnreachableError``, exit 3) ...; ``main``
    reports it like every other error.
    """
    result = launcher(*args, **kwargs)
    return result if isinstance(result, int) else 0


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from flags and environment; a malformed address or URL is a usage error."""
    settings = _raw_settings(args)
    if problems := settings.problems():
        raise CliError("; ".join(problems), ExitCode.USAGE)
    return settings


def _raw_settings(args: argparse.Namespace) -> Settings:
    wait = getattr(args, "wait", None)
    try:
        return Settings.from_env(
            data_dir=getattr(args, "data_dir", None),
            listen=getattr(args, "listen", None),
            database_url=getattr(args, "db", None),
            redis_url=getattr(args, "redis", None),
            metrics_port=getattr(args, "metrics_port", None),
            tls_cert=getattr(args, "tls_cert", None),
            tls_key=getattr(args, "tls_key", None),
            start_wait_seconds=float(wait) if wait is not None else None,
        )
    except ValueError as exc:  # a malformed environment variable
        raise CliError(str(exc), ExitCode.USAGE) from exc


def server(args: argparse.Namespace, inv: Invocation) -> int:
    serve = load_entry_point("controlplane.server", "serve", inv.command)
    return _launch(serve, _settings(args), output=inv.output.format)


def worker(args: argparse.Namespace, inv: Invocation) -> int:
    run_worker = load_entry_point("controlplane.worker", "run_worker", inv.command)
    return _launch(run_worker, _settings(args), output=inv.output.format)


def db_upgrade(args: argparse.Namespace, inv: Invocation) -> int:
    upgrade = load_entry_point("controlplane.db", "upgrade", inv.command)
    settings = _settings(args)
    revisions = upgrade(settings.db_url)
    doc = {"database": redact_url(settings.db_url), **revisions}
    inv.output.result(doc, _upgrade_text)
    return 0


def _upgrade_text(doc: dict[str, Any]) -> str:
    where = doc["database"]
    if doc["from"] == doc["to"]:
        return f"database already at the newest schema ({doc['to']}): {where}"
    return f"database upgraded from {doc['from'] or 'empty'} to {doc['to']}: {where}"


def init(args: argparse.Namespace, inv: Invocation) -> int:
    init_fleet = load_entry_point("controlplane.startup", "init_fleet", inv.command)
    settings = _settings(args)
    plane, result = init_fleet(settings)
    plane.close()
    doc = {
        "database": redact_url(settings.db_url),
        "schema": {"from": result.schema_from, "to": result.schema_to},
        "signing_key": {"key_id": result.key_id, "public_key": str(result.public_key_path)},
        "admin_token": result.admin_token,
        "admin_token_path": str(result.admin_token_path),
    }
    inv.output.result(doc, _init_text)
    return 0


def _init_text(doc: dict[str, Any]) -> str:
    schema = doc["schema"]
    lines = [_upgrade_text({"database": doc["database"], **schema}),
             f"signing key {doc['signing_key']['key_id']}: agents take "
             f"{doc['signing_key']['public_key']} as --trust-key"]
    if doc["admin_token"]:
        lines.append(f"admin token (also in {doc['admin_token_path']}, mode 0600; shown once):")
        lines.append(doc["admin_token"])
    else:
        lines.append(f"the fleet's first admin token was issued before (see "
                     f"{doc['admin_token_path']} where it was written)")
    return "\n".join(lines)


def demo(args: argparse.Namespace, inv: Invocation) -> int:
    run_demo = load_entry_point("controlplane.demo", "run_demo", inv.command)
    return _launch(run_demo, data_dir=args.data_dir, devices=args.devices, keep=args.keep,
                   output=inv.output.format)
