"""The latency budget a device holds a variant to, before activation and on probation.

The control plane signs into each manifest what every interpreter that ran the variant within
tolerance measured (``protos.contract.latency``). A device is not the control plane's host, so
the budget is a multiple of that figure rather than the figure itself:

    budget = min(validation_latency_budget_ms, max(latency_budget_floor_ms,
                                                   latency_budget_factor x measured p95))

and, where the manifest has no figure for this device's interpreter, the absolute
``validation_latency_budget_ms``. The floor keeps a sub-millisecond model from failing on
scheduler noise; the ceiling is the longest any model may take here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.errors import DocumentError
from agent.settings import AgentSettings
from protos.contract import ContractError
from protos.contract.latency import measured_for


@dataclass(frozen=True)
class LatencyBudget:
    limit_ms: float
    basis: str          # how the limit was set, for messages

    def describe(self, observed_ms: float, what: str) -> str:
        return f"{what} {observed_ms:.2f} ms exceeds the {self.limit_ms:.2f} ms budget " \
               f"({self.basis})"


def latency_budget(manifest: dict[str, Any], interpreter: str,
                   settings: AgentSettings) -> LatencyBudget:
    """Raises DocumentError on a malformed ``latency_ms`` (verified manifests never have one)."""
    ceiling = settings.validation_latency_budget_ms
    try:
        measured = measured_for(manifest, interpreter)
    except ContractError as exc:
        raise DocumentError(f"manifest {exc}") from exc
    if measured is None:
        return LatencyBudget(ceiling, f"no figure measured in {interpreter}: the absolute budget")
    relative = max(settings.latency_budget_floor_ms,
                   settings.latency_budget_factor * measured.p95_ms)
    if relative >= ceiling:
        return LatencyBudget(ceiling, "the absolute budget")
    return LatencyBudget(relative, f"{settings.latency_budget_factor:g}x the p95 "
                                   f"{measured.p95_ms:.3f} ms measured in {interpreter}")
