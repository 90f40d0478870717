"""The installer's step list on real artifacts in a real store, loaded into real interpreters:
steps run in order, a refusing step is named and changes nothing that serves."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
import pytest

from agent.errors import (
    AgentTransportError,
    IncompatibleVariantError,
    InstallStepError,
    ModelLoadError,
    ValidationError,
)
from agent.installer import (
    InstallContext,
    Installer,
    Load,
    Prove,
    Swap,
    Validate,
    Verify,
    restore_steps,
)
from agent.metrics import MetricsRecorder
from agent.refs import ModelRef
from agent.serving import ModelTable
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import AgentStore
from agent.trust import Signed
from protos.contract import golden
from tests.agent.support import (
    MLP_INPUT,
    MLP_OUTPUT,
    MLP_SHAPE,
    Artifact,
    manifest_doc,
    mlp_artifact,
    mlp_reference,
)

SETTINGS = AgentSettings()
SIGNED = Signed(b"{}", b"s" * 64, "k")   # the steps never look inside the signed form
X = np.zeros(MLP_SHAPE, np.float32)


class Recorder:
    """Collects what the installer tells (progress, persist, announce) in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def progress(self, ref: ModelRef, state: str, message: str) -> None:
        self.calls.append(("progress", ref.version, state))

    def announce(self, ref: ModelRef, state: str, message: str) -> None:
        self.calls.append(("announce", ref.version, state))

    def persist(self) -> None:
        self.calls.append(("persist",))


class Refuse:
    """A step a later issue might insert (golden samples), refusing every model."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, ctx: InstallContext) -> InstallContext:
        raise ValidationError("outputs differ from the golden samples")


class Unreachable:
    name = "fetch"

    def __call__(self, ctx: InstallContext) -> InstallContext:
        raise AgentTransportError("download failed: UNAVAILABLE", code="UNAVAILABLE")


@pytest.fixture
def store(data_dir) -> AgentStore:
    s = AgentStore(data_dir)
    s.ensure()
    return s


@pytest.fixture
def board() -> StatusBoard:
    return StatusBoard(ModelTable(MetricsRecorder(SETTINGS)))


def on_disk(store: AgentStore, artifact: Artifact, recorder: Recorder,
            version: str = "1.0.0") -> InstallContext:
    """A context for ``artifact`` (model "face"), its bytes already in the store."""
    store.artifact_path(artifact.sha256).write_bytes(artifact.data)
    manifest = manifest_doc(artifact, model="face", version=version)
    ref = ModelRef("face", version, "float32", artifact.sha256)
    return InstallContext(ref, manifest, SIGNED, recorder.progress)


def steps(store: AgentStore, board: StatusBoard, recorder: Recorder, *inserted) -> list:
    return [Verify(store), Load(SETTINGS), Validate(SETTINGS), *inserted,
            Swap(board, recorder.persist, recorder.announce, None)]


def test_a_model_goes_live_through_its_steps_in_order(store, board):
    """Input tried: a good artifact on disk through verify, load, validate, swap."""
    recorder = Recorder()
    installer = Installer(steps(store, board, recorder))
    assert [s.name for s in installer.steps] == ["verify", "load", "validate", "swap"]
    done = installer.run(on_disk(store, mlp_artifact(seed=0), recorder))
    assert done.path is not None and done.runner is not None and done.validation is not None
    assert done.replaced is None
    assert recorder.calls == [("progress", "1.0.0", "verified"), ("persist",),
                              ("announce", "1.0.0", "active")]
    view = board.snapshot()
    assert view.live["face"].ref == done.ref and view.install["face"].state == "active"
    assert "median latency" in view.install["face"].message


@pytest.mark.parametrize("failing", ["verify", "load", "golden"])
def test_a_failing_step_is_named_and_the_previous_model_keeps_serving(store, board, failing):
    """Inputs tried, with face 1.0.0 serving, for face 2.0.0: its artifact altered on disk (the
    verify step refuses it), bytes that are no TFLite model under a manifest that matches them
    (load), and a good model refused by an inserted "golden" step."""
    recorder = Recorder()
    v1 = Installer(steps(store, board, recorder)).run(on_disk(store, mlp_artifact(seed=0),
                                                              recorder))
    installer = Installer(steps(store, board, recorder, Refuse("golden")))
    recorder.calls.clear()

    if failing == "load":
        garbage = Artifact(b"not a flatbuffer" * 64, mlp_artifact().inputs,
                           mlp_artifact().outputs)
        ctx = on_disk(store, garbage, recorder, version="2.0.0")
    else:
        ctx = on_disk(store, mlp_artifact(seed=1), recorder, version="2.0.0")
    if failing == "verify":
        path = store.artifact_path(ctx.ref.sha256)
        path.write_bytes(path.read_bytes()[:-1] + b"\0")

    with pytest.raises(InstallStepError) as caught:
        installer.run(ctx)
    assert caught.value.step == failing
    assert str(caught.value).startswith(f"{failing}: ")
    assert caught.value.__cause__ is caught.value.cause
    if failing == "load":
        assert isinstance(caught.value.cause, ModelLoadError)
    assert ("persist",) not in recorder.calls and not any(c[0] == "announce"
                                                          for c in recorder.calls)
    assert board.snapshot().live["face"].ref == v1.ref
    assert board.snapshot().install["face"].ref == v1.ref
    assert MLP_OUTPUT in board.snapshot().live["face"].runner.predict({MLP_INPUT: X})


def test_a_transport_error_passes_through_unwrapped(store, board):
    """Input tried: a first step that cannot reach the server (UNAVAILABLE)."""
    recorder = Recorder()
    installer = Installer([Unreachable(), *steps(store, board, recorder)])
    with pytest.raises(AgentTransportError) as caught:
        installer.run(on_disk(store, mlp_artifact(seed=0), recorder))
    assert not isinstance(caught.value, InstallStepError)
    assert board.snapshot().live == {}


def test_a_model_missing_from_disk_is_refused_by_verify(store):
    """Input tried: the restore steps for a model whose artifact is not on disk."""
    artifact = mlp_artifact(seed=0)
    manifest = manifest_doc(artifact)
    ctx = InstallContext(ModelRef("demo", "1.0.0", "float32", artifact.sha256), manifest, SIGNED)
    with pytest.raises(InstallStepError, match=r"verify: .*missing from disk"):
        Installer(restore_steps(store=store, settings=SETTINGS)).run(ctx)


def test_two_steps_with_one_name_are_refused():
    """Input tried: a step list naming "golden" twice."""
    with pytest.raises(ValueError, match="unique"):
        Installer([Refuse("golden"), Refuse("golden")])


def test_steps_in_the_wrong_order_are_a_bug_not_a_refused_model(store, board):
    """Input tried: validate placed before load (no runner yet)."""
    recorder = Recorder()
    installer = Installer([Verify(store), Validate(SETTINGS), Load(SETTINGS)])
    with pytest.raises(RuntimeError, match=r"validate.*runner"):
        installer.run(on_disk(store, mlp_artifact(seed=0), recorder))


# -- proving a variant with its golden samples -------------------------------------------------


class OfflineStub:
    """A server that cannot be reached: what is not in the store cannot be fetched."""

    def DownloadArtifact(self, *args: Any, **kwargs: Any) -> Any:
        raise AgentTransportError("offline", code="UNAVAILABLE")


class OfflineLink:
    """A link for steps that should find everything in the store already."""

    stub = OfflineStub()

    @staticmethod
    def metadata() -> tuple[tuple[str, str], ...]:
        return ()


def with_golden(store: AgentStore, ctx: InstallContext, outputs: np.ndarray,
                atol: float = 1e-4) -> InstallContext:
    """``ctx`` whose manifest references golden samples (in the store): ``golden_inputs`` and
    the given outputs for them."""
    data = golden.encode([golden_inputs()], [outputs])
    sha256 = hashlib.sha256(data).hexdigest()
    store.artifact_path(sha256).write_bytes(data)
    manifest = {**ctx.manifest, "golden": {"sha256": sha256, "size": len(data), "samples": 4,
                                           "atol": {MLP_OUTPUT: atol}}}
    return ctx.with_(manifest=manifest)


def golden_inputs() -> np.ndarray:
    return np.random.default_rng(5).uniform(-1, 1, (4, *MLP_SHAPE)).astype(np.float32)


def prove_steps(store: AgentStore, board: StatusBoard, recorder: Recorder,
                **settings: Any) -> list:
    return steps(store, board, recorder, Prove(OfflineLink(), store,  # type: ignore[arg-type]
                                               AgentSettings(**settings), threading.Event()))


def test_a_variant_that_reproduces_its_golden_samples_goes_live(store, board):
    recorder = Recorder()
    expected = np.stack([mlp_reference(x) for x in golden_inputs()])
    ctx = with_golden(store, on_disk(store, mlp_artifact(seed=0), recorder), expected)
    Installer(prove_steps(store, board, recorder)).run(ctx)
    assert ("progress", "1.0.0", "proven") in recorder.calls
    assert board.snapshot().install["face"].state == "active"


def test_a_variant_whose_outputs_are_off_is_incompatible_and_never_goes_live(store, board):
    """Input tried: golden outputs 0.5 away from what this interpreter computes (as a runtime
    that runs the variant wrongly would see them)."""
    recorder = Recorder()
    expected = np.stack([mlp_reference(x) for x in golden_inputs()]) + 0.5
    ctx = with_golden(store, on_disk(store, mlp_artifact(seed=0), recorder), expected)
    with pytest.raises(InstallStepError) as err:
        Installer(prove_steps(store, board, recorder)).run(ctx)
    assert err.value.step == "prove" and isinstance(err.value.cause, IncompatibleVariantError)
    assert f"sample 0, output '{MLP_OUTPUT}': max abs error 0.5" in str(err.value)
    assert "face" not in board.snapshot().live


@pytest.mark.parametrize("case", ["too-large", "altered"])
def test_golden_samples_that_are_not_the_manifest_s_are_refused(store, board, case):
    """Inputs tried: samples larger than max_golden_bytes, and a samples file altered on disk
    (deleted as corrupt, then not fetchable offline)."""
    recorder = Recorder()
    expected = np.stack([mlp_reference(x) for x in golden_inputs()])
    ctx = with_golden(store, on_disk(store, mlp_artifact(seed=0), recorder), expected)
    settings: dict[str, Any] = {}
    if case == "too-large":
        settings["max_golden_bytes"] = 100
    else:
        path = store.artifact_path(ctx.manifest["golden"]["sha256"])
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises((InstallStepError, AgentTransportError)) as err:
        Installer(prove_steps(store, board, recorder, **settings)).run(ctx)
    if case == "too-large":
        assert "above max_golden_bytes 100" in str(err.value)
    else:   # the corrupt file was deleted and would be fetched again; it is never trusted
        assert isinstance(err.value, AgentTransportError)
        assert not store.artifact_path(ctx.manifest["golden"]["sha256"]).exists()
    assert "face" not in board.snapshot().live
