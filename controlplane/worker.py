"""``edgefleet worker`` entry point (kept as its own module so the CLI imports it lazily)."""

from controlplane.celery_app import run_worker

__all__ = ["run_worker"]
