"""EdgeFleet device agent: pulls verified model variants, hot-swaps them and serves them locally.

Two ways for an application on the device to run a model:

- **Through a running agent** (``edgefleet-agent run``, ``agent.cli``), over its unix socket::

      from agent import InferenceClient
      with InferenceClient("/var/lib/edgefleet-agent") as client:
          outputs = client.predict({"image": image}, model="face")

- **Embedded**: the application runs the agent in its own process and calls the live model
  directly, with no gRPC and no socket (the same checks, interpreter pool and metrics)::

      from agent import Agent
      with Agent("/var/lib/edgefleet-agent", server="cp.example:7443",
                 trust_key_path="/etc/edgefleet/trust-key.pub",
                 enroll_token=token_on_first_run) as agent:   # start() ... stop()
          prediction = agent.predict("face", {"image": image})   # model None: the only one
          prediction.outputs["scores"], prediction.ref, prediction.latency_ms

  ``Agent.predict`` is thread-safe and raises what ``InferenceClient.predict`` raises
  (InvalidInputError, ModelNotFoundError, NoModelLoadedError; InferenceError when the
  interpreter fails). The input arrays are only read (a float32 C-contiguous array is not
  copied before the interpreter's own copy); the outputs are new float32 arrays the caller owns.
  The agent's sync thread runs beside the application's threads in the same process: one data
  dir is served by one agent, embedded or not.

This package never imports ``controlplane``.
"""

from agent.client import InferenceClient, PredictResult
from agent.daemon import Agent
from agent.errors import (
    AgentError,
    AgentTransportError,
    InferenceError,
    InvalidInputError,
    ModelNotFoundError,
    NoModelLoadedError,
    PredictRequestError,
)
from agent.serving import Prediction

__all__ = [
    "Agent",
    "AgentError",
    "AgentTransportError",
    "InferenceClient",
    "InferenceError",
    "InvalidInputError",
    "ModelNotFoundError",
    "NoModelLoadedError",
    "PredictRequestError",
    "PredictResult",
    "Prediction",
]
