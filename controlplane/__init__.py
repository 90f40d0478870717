"""EdgeFleet control plane: registry, fleet, rollouts, telemetry, auth, the gRPC API and the CLI.

Organised by domain (docs/architecture.md): registry, fleet, rollouts, telemetry, auth, the thin
gRPC servicers (``api``) and the CLI; shared infrastructure (``config``, ``db``, ``app``,
``jobs``, ``startup``, ``errors``) sits at the top of the package. Never imports ``agent``.
"""
