"""The ``edgefleet`` operator CLI: a thin gRPC client of AdminService plus the local launchers.

Entry point: ``controlplane.cli.main:main``. Remote commands talk only gRPC to AdminService;
``server``, ``worker``, ``db upgrade`` and ``demo`` import their implementation lazily so that
``edgefleet --help`` stays fast and works without the server extras.
"""
