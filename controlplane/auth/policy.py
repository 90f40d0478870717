"""Who may call what: the one table every RPC is checked against.

A method missing from ``POLICY`` is refused for everyone (fail closed), except the standard health
and reflection services, which carry no fleet data.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "operator", "admin")  # each role can do everything the ones before it can

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    kind: str  # operator | enrollment | device
    id: str  # token id, or device id for devices
    role: str | None = None  # operators only

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Rule:
    kind: str
    min_role: str | None = None


_D = "/edgefleet.v1.DeviceService/"
_A = "/edgefleet.v1.AdminService/"
POLICY: dict[str, Rule] = {
    _D + "Enroll": Rule("enrollment"),
    _D + "Sync": Rule("device"),
    _D + "Watch": Rule("device"),
    _D + "DownloadArtifact": Rule("device"),
    _D + "ReportStatus": Rule("device"),
    _D + "ReportMetrics": Rule("device"),
    _A + "CreateToken": Rule("operator", "admin"),
    _A + "ListTokens": Rule("operator", "admin"),
    _A + "RevokeToken": Rule("operator", "admin"),
    _A + "CreateEnrollmentToken": Rule("operator", "operator"),
    _A + "RevokeEnrollmentToken": Rule("operator", "operator"),
    _A + "PushModel": Rule("operator", "operator"),
    _A + "ListModels": Rule("operator", "viewer"),
    _A + "GetModel": Rule("operator", "viewer"),
    _A + "ListDevices": Rule("operator", "viewer"),
    _A + "GetDevice": Rule("operator", "viewer"),
    _A + "LabelDevice": Rule("operator", "operator"),
    _A + "RevokeDevice": Rule("operator", "operator"),
    _A + "CreateRollout": Rule("operator", "operator"),
    _A + "ListRollouts": Rule("operator", "viewer"),
    _A + "GetRollout": Rule("operator", "viewer"),
    _A + "ChangeRollout": Rule("operator", "operator"),
    _A + "RolloutHistory": Rule("operator", "viewer"),
    _A + "ListAudit": Rule("operator", "admin"),
    _A + "ExplainDevice": Rule("operator", "viewer"),
    _A + "ListHardwareClasses": Rule("operator", "viewer"),
    _A + "ListIncompatibilities": Rule("operator", "viewer"),
    _A + "ClearIncompatibility": Rule("operator", "operator"),
}


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_PREFIXES)


def allowed(method: str, principal: Principal) -> tuple[bool, str]:
    """Whether ``principal`` may call ``method``; the reason when not."""
    rule = POLICY.get(method)
    if rule is None:
        return False, f"{method} is not an EdgeFleet method"
    if principal.kind != rule.kind:
        return False, f"{method} needs a {rule.kind} credential, not a {principal.kind} one"
    if rule.min_role is not None and (
        principal.role not in ROLES or ROLES.index(principal.role) < ROLES.index(rule.min_role)
    ):
            return (
                False,
                f"{method} needs role {rule.min_role} or higher (token has {principal.role})",
            )
    return True, ""
