"""The argparse tree: every command's flags, global options anywhere, usage errors (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.cli.main import build_parser
from controlplane.cli.parsing import ModelRef

Runner = Callable[..., Any]  # the `run` fixture of conftest.py
parse = build_parser().parse_args


def test_global_options_default_to_table_and_unset() -> None:
    args = parse(["model", "list"])
    assert (args.server, args.token, args.output) == (None, None, "table")


@pytest.mark.parametrize(
    "argv",
    [
        ["--server", "h:1", "--token", "T", "-o", "json", "model", "list"],
        ["model", "list", "--server", "h:1", "--token", "T", "-o", "json"],
        ["model", "--server", "h:1", "list", "--token", "T", "--output", "json"],
        ["-o", "json", "model", "--token", "T", "list", "--server", "h:1"],
    ],
)
def test_global_options_work_before_between_and_after_command_words(argv: list[str]) -> None:
    args = parse(argv)
    assert (args.server, args.token, args.output) == ("h:1", "T", "json")


def test_global_option_given_late_wins_over_early() -> None:
    assert parse(["-o", "table", "device", "list", "-o", "json"]).output == "json"


def test_server_flags() -> None:
    args = parse(["server", "--data-dir", "d", "--listen", "0.0.0.0:9", "--db",
                  "postgresql://u@h/db", "--redis", "redis://r", "--metrics-port", "9100"])
    assert (args.handler, args.data_dir, args.listen, args.db, args.redis, args.metrics_port) == (
        "local:server", Path("d"), "0.0.0.0:9", "postgresql://u@h/db", "redis://r", 9100)


def test_worker_db_upgrade_and_demo_flags() -> None:
    worker = parse(["worker", "--db", "sqlite:///x", "--redis", "redis://r", "--data-dir", "d"])
    assert (worker.handler, worker.db, worker.redis, worker.data_dir) == (
        "local:worker", "sqlite:///x", "redis://r", Path("d"))
    upgrade = parse(["db", "upgrade", "--db", "sqlite:///x"])
    assert (upgrade.handler, upgrade.command_name, upgrade.db) == (
        "local:db_upgrade", "db upgrade", "sqlite:///x")
    demo = parse(["demo"])
    assert (demo.devices, demo.keep, demo.data_dir) == (3, False, None)
    demo = parse(["demo", "--devices", "5", "--keep", "--data-dir", "d"])
    assert (demo.devices, demo.keep, demo.data_dir) == (5, True, Path("d"))


def test_token_and_enroll_token_flags() -> None:
    token = parse(["token", "create", "--role", "operator", "--description", "ci"])
    assert (token.handler, token.role, token.description) == (
        "tokens:create_token", "operator", "ci")
    enroll = parse(["enroll-token", "create", "--labels", "site=berlin,tier=canary",
                    "--uses", "10", "--expires", "7d"])
    assert (enroll.labels, enroll.uses, enroll.expires) == (
        {"site": "berlin", "tier": "canary"}, 10, 7 * 86400)
    bare = parse(["enroll-token", "create"])
    assert (bare.labels, bare.uses, bare.expires) == (None, None, None)


def test_model_flags() -> None:
    push = parse(["model", "push", "m.tflite", "--name", "face", "--version", "1.2.0",
                  "--calibration", "c.npz"])
    assert (push.file, push.name, push.version, push.calibration) == (
        Path("m.tflite"), "face", "1.2.0", Path("c.npz"))
    assert parse(["model", "show", "face"]).ref == ModelRef("face", "")
    assert parse(["model", "show", "face:2"]).ref == ModelRef("face", "2")
    assert parse(["model", "list"]).handler == "models:list_models"


def test_device_flags() -> None:
    assert parse(["device", "list", "--selector", "site=berlin"]).selector == "site=berlin"
    assert parse(["device", "show", "d-1"]).device_id == "d-1"
    label = parse(["device", "label", "d-1", "site=berlin", "tier="])
    assert (label.device_id, label.labels) == ("d-1", [("site", "berlin"), ("tier", "")])


def test_rollout_flags() -> None:
    create = parse(["rollout", "create", "face:1.2.0", "--selector", "site=berlin",
                    "--waves", "1%,10%,100%", "--bake", "10m"])
    assert (create.ref, create.selector, create.waves, create.bake) == (
        ModelRef("face", "1.2.0"), "site=berlin", ["1%", "10%", "100%"], 600)
    status = parse(["rollout", "status", "r1", "--watch"])
    assert (status.rollout_id, status.watch) == ("r1", True)
    assert parse(["rollout", "status", "r1"]).watch is False
    assert parse(["rollout", "list"]).handler == "rollouts:list_rollouts"
    for action in ("pause", "resume", "abort", "rollback"):
        change = parse(["rollout", action, "r1"])
        assert (change.handler, change.action, change.rollout_id, change.command_name,
                change.reason) == ("rollouts:change", action, "r1", f"rollout {action}", "")
        assert parse(["rollout", action, "r1", "--reason", "why"]).reason == "why"
    history = parse(["rollout", "history", "r1"])
    assert (history.handler, history.rollout_id, history.command_name) == (
        "rollouts:history", "r1", "rollout history")
    audit = parse(["audit", "list", "--actor", "ab" * 8, "--subject", "r1"])
    assert (audit.handler, audit.actor, audit.subject, audit.command_name) == (
        "audit:list_events", "ab" * 8, "r1", "audit list")
    assert (parse(["audit", "list"]).actor, parse(["audit", "list"]).subject) == (None, None)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "required"),
        (["model"], "required"),
        (["frobnicate"], "invalid choice"),
        (["-o", "yaml", "model", "list"], "invalid choice"),
        (["token", "create"], "--role"),
        (["token", "create", "--role", "root"], "invalid choice"),
        (["enroll-token", "create", "--expires", "10"], "has no unit"),
        (["enroll-token", "create", "--expires", "0s"], "longer than 0s"),
        (["enroll-token", "create", "--uses", "0"], "at least 1"),
        (["enroll-token", "create", "--uses", "5000000000"], "above 4294967295"),
        (["enroll-token", "create", "--expires", "99999999999999999d"], "too long"),
        (["enroll-token", "create", "--labels", "site"], "not key=value"),
        (["model", "push", "m.tflite", "--name", "face"], "--version"),
        (["model", "show", "face:"], "empty version"),
        (["device", "label", "d-1"], "required"),
        (["device", "label", "d-1", "site"], "not key=value"),
        (["rollout", "create", "face", "--selector", "a=b"], "needs a version"),
        (["rollout", "create", "face:1"], "--selector"),
        (["rollout", "create", "face:1", "--selector", "a=b", "--waves", "10%"], "last wave"),
        (["rollout", "create", "face:1", "--selector", "a=b", "--bake", "soon"], "duration"),
        (["server", "--metrics-port", "70000"], "above 65535"),
        (["demo", "--devices", "many"], "whole number"),
    ],
)
def test_malformed_command_lines_exit_2_with_the_reason(
    run: Runner, argv: list[str], complaint: str
) -> None:
    result = run(*argv)
    assert result.code == 2
    assert complaint in result.err
    assert result.out == ""


def test_help_lists_every_command_and_the_token_lookup(run: Runner) -> None:
    result = run("--help")
    assert result.code == 0
    for command in ("server", "worker", "db", "demo", "token", "enroll-token", "model",
                    "device", "rollout"):
        assert f"    {command} " in result.out
    assert "EDGEFLEET_DATA_DIR/admin-token" in result.out
    assert "./edgefleet-data/admin-token" in result.out


@pytest.mark.parametrize(
    ("argv", "flags"),
    [
        (["server"], ["--data-dir", "--listen", "--db", "--redis", "--metrics-port"]),
        (["worker"], ["--db", "--redis", "--data-dir"]),
        (["db", "upgrade"], ["--db", "--data-dir"]),
        (["demo"], ["--data-dir", "--devices", "--keep"]),
        (["rollout", "status"], ["--watch", "--server", "--token", "-o"]),
    ],
)
def test_subcommand_help_shows_its_flags_and_the_global_options(
    run: Runner, argv: list[str], flags: list[str]
) -> None:
    result = run(*argv, "--help")
    assert result.code == 0
    for flag in [*flags, "--server", "--token"]:
        assert flag in result.out
