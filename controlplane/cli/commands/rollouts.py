"""``rollout create|list|status|history|pause|resume|abort|rollback``.

``status --watch`` polls until the rollout stands still: one of ``STOPPED_STATES``. Under
``-o json`` only the final document is printed; in a terminal the live view is redrawn in place,
in a pipe a new one is printed only when something changed.

``create`` sends a ``RolloutPlan`` holding only what the flags gave: a field left unset takes
the server's default, and the server validates the whole plan (it knows its limits).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.follow import follow
from controlplane.cli.output import render_table
from controlplane.cli.rollout_view import progress, render_events, render_live, render_rollout
from protos import edgefleet_pb2 as pb

FAILED_STATES = frozenset({"failed", "aborted", "rolled_back"})
TERMINAL_STATES = FAILED_STATES | {"succeeded"}
STOPPED_STATES = TERMINAL_STATES | {"paused"}

CLEAR_SCREEN = "\x1b[H\x1b[2J"

#: ``args`` attribute -> ``RolloutPlan`` field, for the flags copied as they are.
_PLAN_FIELDS = {"bake": "bake_seconds", "success_threshold": "success_threshold",
                "max_failures": "max_failures", "min_finished": "min_finished",
                "step_timeout": "step_timeout_seconds", "max_per_minute": "max_per_minute",
                "dynamic": "dynamic"}
_GATE_FIELDS = ("max_p95_regression", "max_error_rate", "max_nonfinite_rate", "max_rollbacks",
                "min_inferences")


def plan_request(args: argparse.Namespace) -> pb.RolloutPlan:
    """The plan ``rollout create``'s flags ask for; a flag not given stays unset.

    Raises ``CliError`` (usage) for window flags that do not make a window together.
    """
    plan = pb.RolloutPlan(waves=args.waves or [])
    for flag, field in _PLAN_FIELDS.items():
        if getattr(args, flag) is not None:
            setattr(plan, field, getattr(args, flag))
    if args.start_at is not None:
        start = Timestamp()
        start.FromDatetime(args.start_at)
        plan.start_at.CopyFrom(start)
    if args.window is not None:
        if args.window_duration is None:
            raise CliError("--window needs --window-duration, how long it stays open: e.g. "
                           "--window '0 22 * * *' --window-duration 2h", ExitCode.USAGE)
        plan.window.CopyFrom(pb.MaintenanceWindow(cron=args.window,
                                                  duration_seconds=args.window_duration,
                                                  time_zone=args.window_tz or ""))
    elif args.window_duration is not None or args.window_tz is not None:
        raise CliError("--window-duration and --window-tz go with --window CRON: e.g. "
                       "--window '0 22 * * *' --window-duration 2h --window-tz Europe/Berlin",
                       ExitCode.USAGE)
    for field in _GATE_FIELDS:
        if getattr(args, field) is not None:
            setattr(plan.gates, field, getattr(args, field))
    if args.on_breach is not None:
        plan.gates.on_breach = args.on_breach
    return plan


def create(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.CreateRolloutRequest(model=args.ref.name, version=args.ref.version,
                                      selector=args.selector, variant=args.variant or "",
                                      prefer=args.prefer or "", plan=plan_request(args))
    with inv.admin("operator") as admin:
        response = admin.call("CreateRollout", request)
    doc = convert.rollout(response)
    inv.output.result(doc, render_rollout)
    inv.output.note(f"follow it with: edgefleet rollout status {doc['id']} --watch")
    return 0


def list_rollouts(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("viewer") as admin:
        docs = [convert.rollout(r)
                for r in admin.items("ListRollouts", pb.ListRolloutsRequest(), "rollouts")]
    inv.output.result({"rollouts": docs}, lambda d: render_table(
        ("id", "model", "selector", "state", "progress", "created"),
        [(r["id"], f"{r['model']}:{r['version']}", r["selector"], r["state"], progress(r),
          r["created_at"]) for r in d["rollouts"]],
    ))
    return 0


class _Redraw:
    """Shows successive tables: in place on a terminal, only changes in a pipe."""

    def __init__(self, inv: Invocation) -> None:
        self._output = inv.output
        self._last: str | None = None

    def show(self, text: str) -> None:
        if self._output.interactive:
            self._output.text(CLEAR_SCREEN + text)
        elif text != self._last:
            self._output.text(text if self._last is None else "\n" + text)
        self._last = text


def status(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.GetRolloutRequest(id=args.rollout_id)
    redraw = _Redraw(inv)
    with inv.admin("viewer") as admin:
        def fetch() -> dict[str, Any]:
            return convert.rollout(admin.call("GetRollout", request))

        def show(doc: dict[str, Any]) -> None:
            if not inv.output.json:
                redraw.show(render_live(doc))

        doc = follow(inv, fetch, lambda d: not args.watch or d["state"] in STOPPED_STATES, show,
                     timeout=math.inf, what=f"rollout {args.rollout_id}")
    if inv.output.json:
        inv.output.document(doc)
    elif args.watch:
        redraw.show(render_live(doc))
    else:
        inv.output.text(render_rollout(doc))
    if args.watch and doc["state"] in FAILED_STATES:
        raise CliError(f"rollout {doc['id']} ended {doc['state']}"
                       + (f": {doc['reason']}" if doc["reason"] else ""), ExitCode.ROLLOUT_FAILED)
    return 0


def history(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.RolloutHistoryRequest(id=args.rollout_id)
    with inv.admin("viewer") as admin:
        events = [convert.audit_event(e)
                  for e in admin.items("RolloutHistory", request, "events")]
    inv.output.result({"id": args.rollout_id, "events": events},
                      lambda d: render_events(d["events"], subject=False))
    return 0


def change(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ChangeRolloutRequest(id=args.rollout_id, action=args.action, reason=args.reason)
    with inv.admin("operator") as admin:
        response = admin.call("ChangeRollout", request)
    inv.output.result(convert.rollout(response), render_rollout)
    return 0
