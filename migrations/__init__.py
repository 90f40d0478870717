"""Alembic environment and versions for the control plane schema (``edgefleet db upgrade``)."""
