"""Pushes at once: exactly one winner per name:version, every distinct version stored, never
INTERNAL (audit finding M3, seen on PostgreSQL), and on the embedded default every version is
measured, none left pending by a locked SQLite (M4)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from controlplane import modelgen
from protos import edgefleet_pb2 as pb
from tests.api.conftest import RunningServer, bearer
from tests.api.helpers import push, wait_for

MODEL = modelgen.build_mlp(seed=21)


def _outcome(call) -> str:  # type: ignore[no-untyped-def]
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code().name  # type: ignore[attr-defined]
    return "OK"


def test_forty_pushes_of_one_version_at_once_have_exactly_one_winner(
        server: RunningServer) -> None:
    """Input tried: 40 concurrent pushes of cnn:1.0.0 (same bytes), 20 at a time."""
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: _outcome(lambda: push(server, "race", "1.0.0", MODEL)),
                                 range(40)))
    assert outcomes.count("OK") == 1, outcomes
    assert outcomes.count("ALREADY_EXISTS") == 39, outcomes
    listed = server.admin().ListModels(pb.ListModelsRequest(),
                                       metadata=bearer(server.admin_token)).models
    assert [(m.name, m.version) for m in listed] == [("race", "1.0.0")]


def test_first_pushes_of_distinct_versions_of_a_new_name_all_land(
        server: RunningServer) -> None:
    """Input tried: 20 concurrent first pushes of versions 1..20 of a name nobody pushed yet
    (they race to create the model's row); each version is stored once."""
    models = {f"{i}.0.0": modelgen.build_mlp(seed=100 + i) for i in range(1, 21)}
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(
            lambda item: _outcome(lambda: push(server, "fresh", item[0], item[1])),
            models.items()))
    assert outcomes == ["OK"] * 20
    listed = server.admin().ListModels(pb.ListModelsRequest(),
                                       metadata=bearer(server.admin_token)).models
    assert sorted(m.version for m in listed) == sorted(models)


def test_twenty_pushes_four_at_a_time_are_all_measured(
        server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    """Input tried (M4): 20 pushes, 4 at a time, on the server's own database: every version's
    measurement task finishes (none is left pending waiting for the 5-minute sweep), and no
    "database is locked" traceback is logged."""
    models = {f"{i}.0.0": modelgen.build_mlp(seed=200 + i) for i in range(20)}
    with caplog.at_level(logging.INFO), ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(
            lambda item: _outcome(lambda: push(server, "busy", item[0], item[1])),
            models.items()))
        assert outcomes == ["OK"] * 20

        def all_settled() -> list[str] | None:
            listed = server.admin().ListModels(pb.ListModelsRequest(),
                                               metadata=bearer(server.admin_token)).models
            statuses = [m.status for m in listed]
            return statuses if "pending" not in statuses else None

        statuses = wait_for("every version to be measured", all_settled, timeout=90)
    assert statuses == ["ready"] * 20
    locked = [r for r in caplog.records if "database is locked" in r.getMessage()
              or (r.exc_text and "database is locked" in r.exc_text)]
    assert locked == []
