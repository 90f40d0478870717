"""``rollout create|list|status|pause|resume|abort|rollback``.

``status --watch`` polls until the rollout stands still: one of ``STOPPED_STATES``. Under
``-o json`` only the final document is printed; in a terminal the table is redrawn in place,
in a pipe a new table is printed only when something changed.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.errors import CliError, ExitCode
from controlplane.cli.follow import follow
from controlplane.cli.output import render_fields, render_table
from protos import edgefleet_pb2 as pb

FAILED_STATES = frozenset({"failed", "aborted", "rolled_back"})
TERMINAL_STATES = FAILED_STATES | {"succeeded"}
STOPPED_STATES = TERMINAL_STATES | {"paused"}

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _progress(doc: dict[str, Any]) -> str:
    devices = sum(w["devices"] for w in doc["waves"])
    succeeded = sum(w["succeeded"] for w in doc["waves"])
    failed = sum(w["failed"] for w in doc["waves"])
    skipped = sum(w["skipped"] for w in doc["waves"])
    none_fit = sum(w["no_compatible"] for w in doc["waves"])
    return f"{succeeded}/{devices} ok, {failed} failed" + (
        f", {skipped} skipped (taken over by a newer rollout or revoked)" if skipped else "") + (
        f", {none_fit} with no compatible variant" if none_fit else "")


def render_rollout(doc: dict[str, Any]) -> str:
    fields = render_fields([
        ("id", doc["id"]),
        ("model", f"{doc['model']}:{doc['version']}"),
        ("selector", doc["selector"]),
        ("variant", doc["variant"] or f"chosen per device, preferring {doc['prefer']}"),
        ("state", doc["state"]),
        ("progress", _progress(doc)),
        ("created", doc["created_at"]),
        ("updated", doc["updated_at"]),
        ("created by", doc["created_by"]),
    ])
    waves = render_table(
        ("wave", "devices", "succeeded", "failed", "skipped", "no variant", "state"),
        [(w["index"], w["devices"], w["succeeded"], w["failed"], w["skipped"],
          w["no_compatible"], w["state"]) for w in doc["waves"]],
    )
    if doc["failed_devices"]:
        waves += "\n\nfailed devices:\n" + render_table(
            ("device", "state", "why"),
            [(d["device_id"], d["state"], d["message"]) for d in doc["failed_devices"]])
    return fields + "\n\nwaves:\n" + (waves if doc["waves"] else "(none yet)")


def create(args: argparse.Namespace, inv: Invocation) -> int:
    # The foundation server runs every rollout as one wave; accept the contract's flags so
    # scripts keep working when multi-wave lands, and say plainly that they have no effect yet.
    if args.waves is not None and args.waves != [100.0]:
        inv.output.warn("this control plane runs every rollout as a single wave (100%); "
                        "--waves is ignored")
    if args.bake is not None:
        inv.output.warn("this control plane runs every rollout as a single wave; "
                        "--bake is ignored")
    request = pb.CreateRolloutRequest(model=args.ref.name, version=args.ref.version,
                                      selector=args.selector, variant=args.variant or "",
                                      prefer=args.prefer or "")
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
        [(r["id"], f"{r['model']}:{r['version']}", r["selector"], r["state"], _progress(r),
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
                redraw.show(render_rollout(doc))

        doc = follow(inv, fetch, lambda d: not args.watch or d["state"] in STOPPED_STATES, show,
                     timeout=math.inf, what=f"rollout {args.rollout_id}")
    if inv.output.json:
        inv.output.document(doc)
    elif args.watch:
        redraw.show(render_rollout(doc))
    else:
        inv.output.text(render_rollout(doc))
    if args.watch and doc["state"] in FAILED_STATES:
        raise CliError(f"rollout {doc['id']} ended {doc['state']}", ExitCode.ROLLOUT_FAILED)
    return 0


def change(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ChangeRolloutRequest(id=args.rollout_id, action=args.action)
    with inv.admin("operator") as admin:
        response = admin.call("ChangeRollout", request)
    inv.output.result(convert.rollout(response), render_rollout)
    return 0
