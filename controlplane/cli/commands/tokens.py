"""``token create`` and ``enroll-token create``: credentials for operators and for devices."""

from __future__ import annotations

import argparse

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.output import render_fields
from protos import edgefleet_pb2 as pb


def create_token(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.CreateTokenRequest(role=args.role, description=args.description)
    with inv.admin("admin") as admin:
        doc = convert.created_token(admin.call("CreateToken", request))
    inv.output.result(doc, lambda d: render_fields([(k, d[k]) for k in ("id", "role", "token")]))
    inv.output.note("store the token now: it is shown only once")
    return 0


def create_enrollment_token(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.CreateEnrollmentTokenRequest(
        labels=args.labels or {},
        uses=args.uses or 0,                 # 0: the server's default
        expires_in_seconds=args.expires or 0,
    )
    with inv.admin("operator") as admin:
        doc = convert.enrollment_token(admin.call("CreateEnrollmentToken", request))
    inv.output.result(doc, lambda d: render_fields(
        [(k, d[k]) for k in ("id", "token", "uses", "expires_at", "labels")]))
    inv.output.note(f"enroll a device with: edgefleet-agent run --server {inv.server} "
                    "--enroll-token TOKEN --data-dir DIR --trust-key signing-key.pub")
    return 0
