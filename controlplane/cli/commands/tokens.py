"""``token create|list|revoke`` and ``enroll-token create|revoke``: credentials for operators and
for devices."""

from __future__ import annotations

import argparse

from controlplane.cli import convert
from controlplane.cli.context import Invocation
from controlplane.cli.output import render_fields, render_table
from protos import edgefleet_pb2 as pb


def create_token(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.CreateTokenRequest(role=args.role, description=args.description,
                                    expires_in_seconds=args.expires or 0)   # 0: never
    with inv.admin("admin") as admin:
        doc = convert.created_token(admin.call("CreateToken", request))
    inv.output.result(doc, lambda d: render_fields(
        [(k, d[k] or "never" if k == "expires_at" else d[k])
         for k in ("id", "role", "token", "expires_at")]))
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
    tls = " --tls-ca CA.pem" if inv.tls_ca is not None else ""
    inv.output.note(f"enroll a device with: edgefleet-agent run --server {inv.server} "
                    f"--enroll-token TOKEN --data-dir DIR --trust-key signing-key.pub{tls} "
                    "(signing-key.pub is in the server's data dir: copy it to the device)")
    return 0


def list_tokens(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("admin") as admin:
        docs = [convert.operator_token(t)
                for t in admin.items("ListTokens", pb.ListTokensRequest(), "tokens")]
    inv.output.result({"tokens": docs}, lambda d: render_table(
        ("id", "role", "description", "created", "created by", "expires", "revoked"),
        [(t["id"], t["role"], t["description"], t["created_at"], t["created_by"],
          t["expires_at"] or "never", t["revoked_at"]) for t in d["tokens"]],
    ))
    return 0


def revoke_token(args: argparse.Namespace, inv: Invocation) -> int:
    with inv.admin("admin") as admin:
        doc = convert.operator_token(admin.call("RevokeToken",
                                                pb.RevokeTokenRequest(id=args.token_id)))
    inv.output.result(doc, lambda d: render_fields([(k, d[k]) for k in
                                                    ("id", "role", "description", "revoked_at")]))
    inv.output.note("every server refuses it from now on")
    return 0


def revoke_enrollment_token(args: argparse.Namespace, inv: Invocation) -> int:
    request = pb.RevokeEnrollmentTokenRequest(id=args.token_id)
    with inv.admin("operator") as admin:
        doc = convert.revoked_enrollment_token(admin.call("RevokeEnrollmentToken", request))
    inv.output.result(doc, lambda d: render_fields([(k, d[k]) for k in
                                                    ("id", "uses_left", "revoked_at")]))
    inv.output.note("devices already enrolled with it keep working; "
                    "revoke one with `edgefleet device revoke ID`")
    return 0
