"""EdgeFleet device agent: pulls verified model variants, hot-swaps them and serves them locally.

Applications use ``InferenceClient``; the daemon is ``edgefleet-agent run`` (``agent.cli``).
This package never imports ``controlplane``.
"""

from agent.client import InferenceClient, PredictResult
from agent.errors import (
    AgentError,
    AgentTransportError,
    InvalidInputError,
    ModelNotFoundError,
    NoModelLoadedError,
    PredictRequestError,
)

__all__ = [
    "AgentError",
    "AgentTransportError",
    "InferenceClient",
    "InvalidInputError",
    "ModelNotFoundError",
    "NoModelLoadedError",
    "PredictRequestError",
    "PredictResult",
]
