"""The status board: one lock for the live table and everything status shows, so a reader never
sees half of a change. Real runners (real TFLite interpreters) go live and away."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from agent.metrics import MetricsRecorder
from agent.refs import ModelRef
from agent.runtime import ModelRunner
from agent.serving import LiveModel, ModelTable
from agent.settings import AgentSettings
from agent.status import StatusBoard, StatusSnapshot, status_message
from agent.trust import Signed
from tests.agent.support import manifest_doc, mlp_artifact

SIGNED = Signed(b"{}", b"s" * 64, "k")   # the board never looks inside a manifest


@pytest.fixture(scope="module")
def live_models(tmp_path_factory) -> dict[str, LiveModel]:
    """Three real runners: face 1.0.0, face 2.0.0 and voice 1.0.0."""
    root = tmp_path_factory.mktemp("runners")
    made = {}
    for key, model, version, seed in (("face1", "face", "1.0.0", 0), ("face2", "face", "2.0.0", 1),
                                      ("voice", "voice", "1.0.0", 2)):
        artifact = mlp_artifact(seed=seed)
        path = root / f"{artifact.sha256}.tflite"
        path.write_bytes(artifact.data)
        manifest = manifest_doc(artifact, model=model, version=version)
        ref = ModelRef(model, version, "float32", artifact.sha256)
        made[key] = LiveModel(ref, ModelRunner(path, manifest, settings=AgentSettings()), SIGNED)
    return made


@pytest.fixture
def board() -> StatusBoard:
    return StatusBoard(ModelTable(MetricsRecorder(AgentSettings())))


def torn(view: StatusSnapshot) -> list[str]:
    """Every way ``view`` contradicts itself; empty for a consistent view."""
    problems = []
    for name, install in view.install.items():
        if install.state == "active" and (name not in view.live
                                          or view.live[name].ref != install.ref):
            problems.append(f"{name} shown active but {view.live.get(name)} is live")
    for name, live in view.live.items():
        if name not in view.install:
            problems.append(f"{name} live with no install state")
        if view.previous.get(name) == live.ref.sha256:
            problems.append(f"{name} lists its live sha256 as the previous one")
    return problems


def test_activate_replace_and_remove_each_change_the_table_and_the_board_together(
        board, live_models):
    """Inputs tried: face 1.0.0 activated, replaced by face 2.0.0, voice activated and then
    removed; after each the snapshot's table, install states and previous sha256s agree."""
    face1, face2, voice = live_models["face1"], live_models["face2"], live_models["voice"]
    assert board.activate(face1, "validated") is None
    assert board.activate(face2, "validated") is face1
    board.activate(voice, "validated")
    view = board.snapshot()
    assert set(view.live) == {"face", "voice"} and torn(view) == []
    assert view.previous == {"face": face1.ref.sha256}

    assert board.remove("voice") is voice
    view = board.snapshot()
    assert set(view.live) == {"face"} and set(view.install) == {"face"}
    assert view.previous == {"face": face1.ref.sha256, "voice": voice.ref.sha256}
    status = status_message(view, MetricsRecorder(AgentSettings()))
    assert [(m.model, m.state, m.previous_sha256) for m in status.models] == [
        ("face", "active", face1.ref.sha256)]


def test_a_snapshot_does_not_change_under_later_writes(board, live_models):
    """Input tried: a snapshot taken, then a model activated, an error set and a sync recorded."""
    before = board.snapshot()
    board.activate(live_models["face1"], "validated")
    board.set_transport_error("sync failed: UNAVAILABLE")
    board.synced(datetime.now(UTC))
    assert before == StatusSnapshot()
    assert dict(before.live) == {} and before.last_sync is None


def test_a_failed_install_and_the_last_error_are_one_step(board, live_models):
    """Input tried: face 2.0.0 failing while face 1.0.0 serves; then a new desired state."""
    board.activate(live_models["face1"], "validated")
    board.install_failed(live_models["face2"].ref, "verify: sha256 differs")
    view = board.snapshot()
    assert view.install["face"].state == "failed" and "verify" in view.last_error
    (model,) = status_message(view, MetricsRecorder(AgentSettings())).models
    assert (model.version, model.state) == ("1.0.0", "active")
    assert "2.0.0 (float32) failed" in model.message
    board.accepted(2)
    assert board.snapshot().last_error == "" and board.snapshot().held_sequence == 2


def test_a_transport_error_wins_over_a_data_error_until_the_next_sync(board):
    """Input tried: a data error, then a transport error on top, then a successful sync."""
    board.set_data_error("desired state refused")
    board.set_transport_error("sync failed: UNAVAILABLE")
    assert board.snapshot().last_error == "sync failed: UNAVAILABLE"
    board.synced(datetime.now(UTC))
    assert board.snapshot().last_error == "desired state refused"


@pytest.fixture
def hammer(board) -> Iterator[Callable[[], list[str]]]:
    """Four reader threads taking snapshots (and rendering them) as fast as they can."""
    stop = threading.Event()
    seen: list[str] = []
    reads = [0]
    metrics = MetricsRecorder(AgentSettings())

    def read() -> None:
        while not stop.is_set():
            view = board.snapshot()
            status_message(view, metrics)
            seen.extend(torn(view))
            reads[0] += 1

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()

    def finish() -> list[str]:
        stop.set()
        for t in threads:
            t.join()
        assert reads[0] > 100   # the readers did run while the writer wrote
        return seen

    yield finish
    stop.set()


def test_readers_hammering_the_board_never_see_a_torn_view(board, live_models, hammer):
    """Input tried: 300 rounds of the sync thread's writes (a new face version downloading,
    then swapped in; voice activated, then removed; a failure) while four threads read."""
    face1, face2, voice = live_models["face1"], live_models["face2"], live_models["voice"]
    for i in range(300):
        old, new = (face1, face2) if i % 2 else (face2, face1)
        board.set_install(new.ref, "downloading", "1234 bytes")
        board.set_install(new.ref, "verified", "length and sha256 match")
        board.activate(new, "validated")
        board.activate(voice, "validated")
        board.install_failed(old.ref, "validate: not finite")
        board.remove("voice")
        board.forget_unwanted({"face"})
        board.accepted(i + 1)
    assert hammer() == []


def test_a_model_removed_and_wanted_again_is_not_its_own_previous(board, live_models):
    """Input tried: voice activated, removed (kept as previous), then activated again."""
    voice = live_models["voice"]
    board.activate(voice, "validated")
    board.remove("voice")
    assert board.snapshot().previous == {"voice": voice.ref.sha256}
    board.activate(voice, "validated")
    assert board.snapshot().previous == {}
