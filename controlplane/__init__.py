"""EdgeFleet control plane: registry, fleet, rollouts, telemetry, auth, the gRPC API and the CLI.

Organised by domain (see DESIGN.md); shared infrastructure (``config``, ``db``, ``celery_app``)
sits at the top of the package. Never imports ``agent``.
"""
