"""``edgefleet``: the operator CLI of the EdgeFleet control plane.

The argparse tree lives here; each command's handler lives in ``controlplane.cli.commands.<noun>``
and is imported only when that command runs, so ``edgefleet --help`` is fast and works without
the server extras. Global options (``--server``, ``--token``, ``-o``) are accepted before and
after the command words.

Exit codes (stable; scripts rely on them):

    0    success
    1    generic failure: the server failed (INTERNAL, UNKNOWN, ...) or a local command failed
    2    usage: malformed command line (unknown flag, bad duration, bad label, bad NAME:VERSION)
    3    the control plane is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED)
    4    authentication or permission: no token, a rejected token, or a role too low
    5    not found: the model, device or rollout does not exist
    6    invalid input: a missing/unreadable/invalid local file, INVALID_ARGUMENT, ALREADY_EXISTS,
         FAILED_PRECONDITION, RESOURCE_EXHAUSTED (over a server limit)
    7    `rollout status --watch` ended with the rollout failed, aborted or rolled back
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from controlplane.cli.connection import DEFAULT_SERVER, ClientSettings
from controlplane.cli.context import Invocation
from controlplane.cli.errors import ExitCode, exit_code_for
from controlplane.cli.output import Output
from controlplane.cli.parsing import (
    parse_count_or_share,
    parse_cron,
    parse_label,
    parse_label_list,
    parse_model_ref,
    parse_share,
    parse_start_at,
    parse_time_zone,
    parse_waves,
)
from controlplane.durations import parse_duration
from controlplane.errors import EdgeFleetError

T = TypeVar("T")

Handler = Callable[[argparse.Namespace, Invocation], int]

_DESCRIPTION = """\
Operate an EdgeFleet control plane: push models, create tokens, inspect devices, run rollouts.
Local commands (init, server, worker, db upgrade, demo) run the control plane itself."""

_EPILOG = f"""\
connection:
  --server  ADDR, else $EDGEFLEET_SERVER, else {DEFAULT_SERVER}
  --token   TOKEN, else $EDGEFLEET_TOKEN, else the file $EDGEFLEET_DATA_DIR/admin-token, else
            ./edgefleet-data/admin-token (whichever exists: on the server host the first admin
            token is found without any flag)

output:
  -o table  aligned columns for people (default); -o json: exactly one JSON document on stdout.
  Sizes are bytes, times RFC 3339 UTC, durations like 10m, 2h, 7d. Errors go to stderr.

exit codes:
  0 ok, 1 failure, 2 usage, 3 server unreachable, 4 token missing/rejected/not allowed,
  5 not found, 6 invalid input/already exists/wrong state, 7 watched rollout did not succeed,
  8 model push --wait: the version failed, 9 a wait timed out (the work goes on), 130 interrupted"""


def _typed(parse: Callable[[str], T], name: str) -> Callable[[str], T]:
    """An argparse ``type=`` that keeps the parser's own message (argparse drops ValueError's)."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    convert.__name__ = name
    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return value


# What the wire can carry (uint32 uses, uint64 seconds); the server applies its own, lower limits.
_MAX_WIRE_COUNT = 2**32 - 1
_MAX_WIRE_SECONDS = 2**63 - 1


def _wire_count(text: str) -> int:
    value = _positive_int(text)
    if value > _MAX_WIRE_COUNT:
        raise ValueError(f"{text!r} is above {_MAX_WIRE_COUNT}")
    return value


def _wire_natural(text: str, *, maximum: int = _MAX_WIRE_COUNT) -> int:
    """A whole number from 0 (a count where 0 means none or no limit) up to what the wire holds."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= maximum:
        raise ValueError(f"{text!r} must be from 0 to {maximum}")
    return value


def _wire_duration(text: str, *, minimum: int = 0) -> int:
    """A duration that fits a uint32 of seconds on the wire, at least ``minimum`` seconds."""
    seconds = parse_duration(text)
    if seconds < minimum:
        raise ValueError(f"duration {text!r} must be at least {minimum}s")
    if seconds > _MAX_WIRE_COUNT:
        raise ValueError(f"duration {text!r} is too long")
    return seconds


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise ValueError(f"port {text!r} is above 65535")
    return value


def _positive_duration(text: str) -> int:
    seconds = parse_duration(text)
    if seconds == 0:
        raise ValueError(f"duration {text!r} must be longer than 0s")
    if seconds > _MAX_WIRE_SECONDS:
        raise ValueError(f"duration {text!r} is too long")
    return seconds


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:   # NaN fails this too
        raise ValueError(f"{text!r} must be from 0 to 1, e.g. 0.98")
    return value


positive_int = _typed(_positive_int, "count")
unit_interval = _typed(_unit_interval, "fraction")
wire_count = _typed(_wire_count, "count")
port = _typed(_port, "port")
duration = _typed(parse_duration, "duration")
positive_duration = _typed(_positive_duration, "duration")
label_list = _typed(parse_label_list, "labels")
label_assignment = _typed(lambda s: parse_label(s, allow_empty_value=True), "label")
model_ref_optional_version = _typed(lambda s: parse_model_ref(s, require_version=False), "model")
model_ref_with_version = _typed(lambda s: parse_model_ref(s, require_version=True), "model")
waves = _typed(parse_waves, "waves")
natural = _typed(_wire_natural, "count")
big_natural = _typed(lambda s: _wire_natural(s, maximum=2**63 - 1), "count")
plan_duration = _typed(_wire_duration, "duration")
plan_positive_duration = _typed(lambda s: _wire_duration(s, minimum=1), "duration")
share = _typed(parse_share, "share")
regression = _typed(lambda s: parse_share(s, maximum=100.0, example="20%"), "share")
count_or_share = _typed(parse_count_or_share, "count or share")
start_time = _typed(parse_start_at, "time")
cron = _typed(parse_cron, "cron")
time_zone = _typed(parse_time_zone, "time zone")


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Sub-parsers copy their defaults over the namespace; SUPPRESS keeps a value given before
    # the command words from being reset by the sub-parser's default.
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--server", metavar="ADDR", default=None if top else argparse.SUPPRESS,
        help=f"control plane address (env EDGEFLEET_SERVER; default {DEFAULT_SERVER})",
    )
    group.add_argument(
        "--token", metavar="TOKEN", default=None if top else argparse.SUPPRESS,
        help="API token (env EDGEFLEET_TOKEN; else $EDGEFLEET_DATA_DIR/admin-token or "
             "./edgefleet-data/admin-token when the file exists)",
    )
    group.add_argument(
        "--tls-ca", metavar="FILE", default=None if top else argparse.SUPPRESS,
        help="CA certificate (PEM) to verify the server's TLS with (env EDGEFLEET_TLS_CA); "
             "without it the connection is plaintext",
    )
    group.add_argument(
        "-o", "--output", choices=("table", "json"), default="table" if top else argparse.SUPPRESS,
        help="table for people (default) or exactly one JSON document on stdout",
    )


class _Tree:
    """Builds the nested sub-commands, giving every level the global options."""

    def __init__(self, parser: argparse.ArgumentParser, dest: str) -> None:
        self._sub = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)

    def command(
        self, name: str, help: str, *, handler: str | None = None, words: str | None = None
    ) -> argparse.ArgumentParser:
        """A sub-command; ``handler`` names ``"module:function"`` in ``cli.commands``."""
        parser = self._sub.add_parser(name, help=help, description=help)
        _add_global_options(parser, top=False)
        if handler:
            parser.set_defaults(handler=handler, command_name=words or name)
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgefleet", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, top=True)
    top = _Tree(parser, "noun")
    _add_local_commands(top)
    _add_token_commands(top)
    _add_model_commands(top)
    _add_device_commands(top)
    _add_rollout_commands(top)
    _add_fleet_commands(top)
    _add_audit_commands(top)
    return parser


def _add_local_commands(top: _Tree) -> None:
    init = top.command("init", "create or check a fleet: migrate the database, make the signing "
                       "key and the first admin token (idempotent)", handler="local:init")
    init.add_argument("--data-dir", type=Path, metavar="DIR",
                      help="where the signing key and admin-token go (env EDGEFLEET_DATA_DIR; "
                           "default ./edgefleet-data); shared by every server and worker")
    init.add_argument("--db", metavar="URL", help="database URL (env EDGEFLEET_DB; "
                                                  "default SQLite in the data dir)")

    server = top.command("server", "run the control plane API server (and, embedded, its worker)",
                         handler="local:server")
    server.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="database, artifacts, signing key, admin-token (env "
                             "EDGEFLEET_DATA_DIR; default ./edgefleet-data)")
    server.add_argument("--listen", metavar="HOST:PORT",
                        help="gRPC address (env EDGEFLEET_LISTEN; default 127.0.0.1:7443)")
    _add_store_options(server)
    server.add_argument("--metrics-port", type=port, metavar="N", help="serve Prometheus metrics")
    server.add_argument("--tls-cert", type=Path, metavar="FILE",
                        help="PEM certificate chain: serve TLS (with --tls-key) instead of "
                             "plaintext")
    server.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key for it")
    _add_wait_option(server)

    worker = top.command("worker", "run a Celery worker for background jobs (scaled-out mode)",
                         handler="local:worker")
    _add_store_options(worker)
    worker.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory")
    _add_wait_option(worker)

    db = _Tree(top.command("db", "database maintenance"), "verb")
    upgrade = db.command("upgrade", "apply database migrations", handler="local:db_upgrade",
                         words="db upgrade")
    upgrade.add_argument("--db", metavar="URL", help="database URL (env EDGEFLEET_DB; "
                                                     "default SQLite in the data dir)")
    upgrade.add_argument("--data-dir", type=Path, metavar="DIR", help="data directory")

    demo = top.command("demo", "the whole mission on one machine: real model, real agents",
                       handler="local:demo")
    demo.add_argument("--data-dir", type=Path, metavar="DIR",
                      help="where the demo keeps its state (default: a temporary directory)")
    demo.add_argument("--devices", type=positive_int, default=3, metavar="N",
                      help="number of agents to run (default 3)")
    demo.add_argument("--keep", action="store_true",
                      help="keep the data dir and processes' logs afterwards")


def _add_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=duration, metavar="DURATION",
                        help="how long to wait at start for the database, Redis and `edgefleet "
                             "init` before giving up (env EDGEFLEET_START_WAIT; default 2m)")


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="database URL, e.g. postgresql://... (env EDGEFLEET_DB; "
                             "default SQLite in the data dir)")
    parser.add_argument("--redis", metavar="URL",
                        help="Redis URL for Celery and notifications (env EDGEFLEET_REDIS; "
                             "default: in-process broker)")


def _add_token_commands(top: _Tree) -> None:
    token = _Tree(top.command("token", "API tokens for operators and scripts"), "verb")
    create = token.command("create", "create an API token (shown once)",
                           handler="tokens:create_token", words="token create")
    create.add_argument("--role", required=True, choices=("admin", "operator", "viewer"),
                        help="viewer reads; operator also pushes and rolls out; admin also "
                             "creates tokens")
    create.add_argument("--description", default="", metavar="TEXT", help="who or what it is for")
    create.add_argument("--expires", type=positive_duration, metavar="DURATION",
                        help="lifetime, e.g. 30d, 12h (default: never expires)")
    token.command("list", "list API tokens (never their secrets)", handler="tokens:list_tokens",
                  words="token list")
    revoke = token.command("revoke", "revoke an API token (not the last admin one)",
                           handler="tokens:revoke_token", words="token revoke")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id from `token list`")

    enroll = _Tree(top.command("enroll-token", "one-time tokens for enrolling devices"), "verb")
    create = enroll.command("create", "create an enrollment token",
                            handler="tokens:create_enrollment_token", words="enroll-token create")
    create.add_argument("--labels", type=label_list, metavar="k=v,...",
                        help="labels every device enrolled with it gets")
    create.add_argument("--uses", type=wire_count, metavar="N",
                        help="how many devices may enroll with it (server default 1)")
    create.add_argument("--expires", type=positive_duration, metavar="DURATION",
                        help="lifetime, e.g. 24h, 7d (server default 24h)")
    revoke = enroll.command("revoke", "revoke an enrollment token: no more devices enroll with it",
                            handler="tokens:revoke_enrollment_token", words="enroll-token revoke")
    revoke.add_argument("token_id", metavar="TOKEN_ID", help="the id shown when it was created")


def _add_model_commands(top: _Tree) -> None:
    model = _Tree(top.command("model", "model versions and their optimized variants"), "verb")
    push = model.command("push", "upload a .tflite model as a new version",
                         handler="models:push", words="model push")
    push.add_argument("file", type=Path, metavar="FILE", help="the .tflite file")
    push.add_argument("--name", required=True, help="model name")
    push.add_argument("--version", required=True, help="version, e.g. 1.2.0")
    push.add_argument("--calibration", type=Path, metavar="FILE.npz",
                      help="one array per model input, keyed by input name, shape (N, *input); "
                           "the int8 variant is calibrated and every variant measured on it")
    push.add_argument("--min-cosine", type=unit_interval, metavar="X",
                      help="accuracy tolerance: mean cosine similarity of each output to the "
                           "float reference, 0..1 (server default 0.99)")
    push.add_argument("--min-top1", type=unit_interval, metavar="X",
                      help="accuracy tolerance: top-1 agreement of class-like outputs, 0..1 "
                           "(server default 0.95)")
    push.add_argument("--wait", action="store_true",
                      help="follow the optimize pipeline until the version is ready (exit 0) "
                           "or failed (exit 8)")
    push.add_argument("--timeout", type=positive_duration, default=1800, metavar="DURATION",
                      help="with --wait: give up waiting after this long (exit 9; default 30m)")
    model.command("list", "list model versions", handler="models:list_models", words="model list")
    show = model.command("show", "show a model version, its signature and variants",
                         handler="models:show", words="model show")
    show.add_argument("ref", type=model_ref_optional_version, metavar="NAME[:VERSION]",
                      help="without a version: the newest")
    show.add_argument("--by-class", action="store_true",
                      help="also what devices reported per hardware class and variant: "
                           "latency p50/p95, error rate, non-finite outputs")


def _add_device_commands(top: _Tree) -> None:
    device = _Tree(top.command("device", "enrolled devices"), "verb")
    listing = device.command("list", "list devices", handler="devices:list_devices",
                             words="device list")
    listing.add_argument("--selector", metavar="EXPR", help="e.g. site=berlin,tier=canary")
    show = device.command("show", "show a device, its hardware and models",
                          handler="devices:show", words="device show")
    show.add_argument("device_id", metavar="DEVICE_ID")
    label = device.command("label", "set labels on a device (k= removes k)",
                           handler="devices:label", words="device label")
    label.add_argument("device_id", metavar="DEVICE_ID")
    label.add_argument("labels", nargs="+", type=label_assignment, metavar="k=v")
    revoke = device.command("revoke", "revoke a device: its credential stops working",
                            handler="devices:revoke", words="device revoke")
    revoke.add_argument("device_id", metavar="DEVICE_ID")
    explain = device.command("explain", "which variant of a version the device would get, "
                             "and why not the others", handler="fleet:explain",
                             words="device explain")
    explain.add_argument("device_id", metavar="DEVICE_ID")
    explain.add_argument("ref", type=model_ref_with_version, metavar="NAME:VERSION")
    _add_choice_options(explain)


def _add_choice_options(parser: argparse.ArgumentParser) -> None:
    """The variant policy flags ``rollout create`` and ``device explain`` share."""
    parser.add_argument("--prefer", choices=("latency", "accuracy", "size"),
                        help="among a device's eligible variants: fastest on its hardware "
                             "(default), most accurate, or smallest")
    parser.add_argument("--variant", metavar="KIND",
                        help="give every device this variant (e.g. int8); a device whose "
                             "interpreter it was rejected for is refused, with the reason")


def _add_fleet_commands(top: _Tree) -> None:
    fleet = _Tree(top.command("fleet", "the fleet's hardware classes and learned "
                              "incompatibilities"), "verb")
    fleet.command("classes", "hardware classes with their device counts",
                  handler="fleet:classes", words="fleet classes")
    compat = _Tree(fleet.command("compat", "variants found incompatible with a hardware "
                                 "class"), "compat_verb")
    listing = compat.command("list", "the marks learned from devices' reports",
                             handler="fleet:compat", words="fleet compat list")
    listing.add_argument("ref", nargs="?", type=model_ref_with_version, metavar="NAME:VERSION",
                         help="only this version's")
    clear = compat.command("clear", "clear a mark: the variant is offered to the class again",
                           handler="fleet:compat_clear", words="fleet compat clear")
    clear.add_argument("ref", type=model_ref_with_version, metavar="NAME:VERSION")
    clear.add_argument("variant", metavar="KIND")
    clear.add_argument("--class", dest="hardware_class", metavar="KEY",
                       help="only on this class (see `edgefleet fleet classes`); default: all")


def _add_rollout_commands(top: _Tree) -> None:
    rollout = _Tree(top.command("rollout", "roll a model version out to devices"), "verb")
    create = rollout.command("create", "start a rollout", handler="rollouts:create",
                             words="rollout create")
    create.add_argument("ref", type=model_ref_with_version, metavar="NAME:VERSION")
    create.add_argument("--selector", required=True, metavar="EXPR",
                        help="which devices, e.g. site=berlin,tier=canary; '*' for the whole fleet")
    _add_plan_options(create)
    _add_choice_options(create)
    rollout.command("list", "list rollouts", handler="rollouts:list_rollouts",
                    words="rollout list")
    status = rollout.command("status", "show a rollout and its waves", handler="rollouts:status",
                             words="rollout status")
    status.add_argument("rollout_id", metavar="ROLLOUT_ID")
    status.add_argument("--watch", action="store_true",
                        help="a live view, re-polled every 2 s, until the rollout ends or is "
                             "paused (exit 7 when it ended failed, aborted or rolled back)")
    history = rollout.command("history", "what happened to a rollout: operators' actions and "
                              "the engine's steps, oldest first", handler="rollouts:history",
                              words="rollout history")
    history.add_argument("rollout_id", metavar="ROLLOUT_ID")
    for action, help in (("pause", "stop moving devices forward"),
                         ("resume", "continue a paused rollout"),
                         ("abort", "stop the rollout and leave devices as they are"),
                         ("rollback", "stop and return devices to the previous version")):
        change = rollout.command(action, help, handler="rollouts:change",
                                 words=f"rollout {action}")
        change.add_argument("rollout_id", metavar="ROLLOUT_ID")
        change.add_argument("--reason", metavar="TEXT", default="",
                            help="why, recorded in the rollout's history")
        change.set_defaults(action=action)


def _add_plan_options(create: argparse.ArgumentParser) -> None:
    """The rollout plan; a flag not given is left unset and the server's default applies."""
    plan = create.add_argument_group("plan (a flag left out takes the server's default)")
    plan.add_argument("--waves", type=waves, metavar="LIST",
                      help="cumulative wave sizes, device counts or shares of the matching "
                           "devices, ending at 100%%, e.g. 5,10%%,50%%,100%% (default 100%%)")
    plan.add_argument("--bake", type=plan_duration, metavar="DURATION",
                      help="how long a wave must stay healthy, its gates judged, before the "
                           "next starts, e.g. 10m (default 10m with several waves, else 0s)")
    plan.add_argument("--success-threshold", type=share, metavar="SHARE",
                      help="share of a wave's devices that must be active before it "
                           "completes, e.g. 95%% or 0.95 (default 100%%)")
    plan.add_argument("--max-failures", type=count_or_share, metavar="N|SHARE",
                      help="failed devices a rollout tolerates: a count (3) or a share of the "
                           "finished devices (5%%) (default 0)")
    plan.add_argument("--min-finished", type=natural, metavar="N",
                      help="finished devices before a share in --max-failures is judged "
                           "(default 10)")
    plan.add_argument("--step-timeout", type=plan_positive_duration, metavar="DURATION",
                      help="a device making no progress for this long has failed, e.g. 15m "
                           "(default 30m)")
    plan.add_argument("--max-per-minute", type=natural, metavar="N",
                      help="devices started per minute; 0: no limit (default 0)")
    plan.add_argument("--start-at", type=start_time, metavar="TIME",
                      help="start later: an RFC 3339 time (2026-05-01T22:00:00Z) or a delay "
                           "from now (+30m) (default: at once)")
    plan.add_argument("--window", type=cron, metavar="CRON",
                      help="maintenance window: devices activate only inside it; 5 cron fields "
                           "in quotes, e.g. '0 22 * * mon-fri' (needs --window-duration; "
                           "default: always open)")
    plan.add_argument("--window-duration", type=plan_positive_duration, metavar="DURATION",
                      help="how long the window stays open from each cron time, e.g. 2h")
    plan.add_argument("--window-tz", type=time_zone, metavar="ZONE",
                      help="the window's IANA time zone, e.g. Europe/Berlin (default UTC)")
    plan.add_argument("--dynamic", action=argparse.BooleanOptionalAction, default=None,
                      help="devices that come to match the selector join the running wave "
                           "(default: no)")
    gates = create.add_argument_group(
        "gates, judged per hardware class over each wave's bake against the previous version "
        "(a flag left out takes the server's default)")
    gates.add_argument("--max-p95-regression", type=regression, metavar="SHARE",
                       help="p95 latency at most this much above the baseline's, e.g. 20%% "
                            "(default 20%%)")
    gates.add_argument("--max-error-rate", type=share, metavar="SHARE",
                       help="errors per inference on the new version, e.g. 1%% (default 1%%)")
    gates.add_argument("--max-nonfinite-rate", type=share, metavar="SHARE",
                       help="non-finite outputs per inference, e.g. 0 (default 0)")
    gates.add_argument("--max-rollbacks", type=natural, metavar="N",
                       help="probation rollbacks devices may report (default 0)")
    gates.add_argument("--min-inferences", type=big_natural, metavar="N",
                       help="inferences per class and side before a gate is judged; fewer: "
                            "inconclusive, which pauses (default 100)")
    gates.add_argument("--on-breach", choices=("pause", "rollback"),
                       help="what a breached gate does (default pause)")


def _add_audit_commands(top: _Tree) -> None:
    audit = _Tree(top.command("audit", "the audit log: every operator action on the fleet and "
                              "the rollout engine's steps"), "verb")
    listing = audit.command("list", "audit events, newest first (an admin token)",
                            handler="audit:list_events", words="audit list")
    listing.add_argument("--actor", metavar="TOKEN_ID",
                         help="only this operator token's actions ('engine': the rollout "
                              "engine's steps)")
    listing.add_argument("--subject", metavar="ID",
                         help="only about this rollout, token, device or model")


def _load_handler(spec: str) -> Handler:
    module, _, function = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(f"controlplane.cli.commands.{module}"),
                               function)
    return handler


def main(argv: Sequence[str] | None = None, *, settings: ClientSettings | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else ExitCode.USAGE
    output = Output(args.output)
    invocation = Invocation(args=args, output=output, settings=settings or ClientSettings())
    try:
        return int(_load_handler(args.handler)(args, invocation))
    except EdgeFleetError as exc:
        output.error(str(exc))
        return int(exit_code_for(exc))
    except KeyboardInterrupt:
        output.error("interrupted")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`| head`); point stdout at devnull so the flush at exit is quiet.
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.GENERIC)


if __name__ == "__main__":
    sys.exit(main())
