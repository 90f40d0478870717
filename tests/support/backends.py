"""The database backends a ``db_url`` test runs on, kept apart from ``tests.support.db``.

The root conftest needs these fixture params at import time, while ``tests.support.db`` imports
the control plane's dependencies (SQLAlchemy, psycopg, Alembic); keeping the params here lets the
agent's tests run in a venv holding only ``edgefleet[agent]`` (``make test-agent``).
"""

from __future__ import annotations

import pytest

# Fixture params for "run on each backend"; the PostgreSQL run carries the ``postgres`` mark.
BACKENDS = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="pg", marks=pytest.mark.postgres),
)
