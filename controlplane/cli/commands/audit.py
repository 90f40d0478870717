"""``audit list``: the audit log, newest first, optionally only one actor's or one subject's."""

from __future__ import annotations

import argparse

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.rollout_view import render_events
from protos import edgefleet_pb2 as pb


def list_events(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.ListAuditRequest(actor=args.actor or "", subject_id=args.subject or "")
    with inv.admin("admin") as admin:
        events = [convert.audit_event(e) for e in admin.items("ListAudit", request, "events")]
    inv.output.result({"events": events}, lambda d: render_events(d["events"], subject=True))
    return 0
