"""The installer: a model goes live through a list of named steps, each taking and returning an
``InstallContext``.

The default list (``install_steps``) is download -> verify -> load -> validate -> prove -> swap;
a model the desired state holds (``hold``) goes through the same steps but ``Stage`` in place of
``Swap`` (``stage_steps``): kept on disk, proven, not served; once the hold is lifted it goes
live through verify -> load -> validate -> prove -> swap (``unstage_steps``): no download.
at start the models the data dir kept are re-checked through verify -> load -> validate
(``restore_steps``) before they go live again (they were proven before they first went live),
and a kept previous version goes back live (a rollback, the server's or probation's) through
verify -> load -> validate -> swap (``reactivate_steps``): no download, its file is on disk.
``Swap`` starts the new model's probation (``agent.probation``); a rollback's swap does not.

Invariants:
- The steps run in list order, each once; a step sees what the earlier ones put in the context
  and nothing is shared between installs.
- Only ``Swap`` changes what is served, and it runs last: a failed step leaves the version that
  was serving in place. ``Stage`` never changes what is served.
- A step that refuses the model (bad bytes, unloadable, failed validation) raises; the
  installer turns that into ``InstallStepError`` naming the step, so every failure is reported
  with where it happened. ``AgentTransportError`` (only the download talks to the network)
  passes through unchanged: it is worth trying again, the bytes were not refused.
- Steps are called from the sync thread (and from start-up, for ``restore_steps``) only.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from agent import failpoints
from agent.budget import LatencyBudget, latency_budget
from agent.download import download_artifact
from agent.errors import (
    AgentError,
    AgentTransportError,
    ArtifactMismatchError,
    IncompatibleVariantError,
    InstallStepError,
)
from agent.findings import GOLDEN_MISMATCH, Finding
from agent.link import ServerLink
from agent.probation import Probation
from agent.refs import ModelRef
from agent.runtime import ModelRunner, ValidationReport
from agent.serving import LiveModel
from agent.settings import AgentSettings
from agent.status import StatusBoard
from agent.store import ActiveModel, AgentStore
from agent.trust import DesiredEntry, Signed
from protos.contract import ContractError, golden
from protos.contract.documents import TensorSpec
from protos.contract.golden import GoldenRef

#: Tells of an install step: ``(ref, state, message)`` (see ``Reporter.progress``).
Progress = Callable[[ModelRef, str, str], None]
T = TypeVar("T")


def _unheard(ref: ModelRef, state: str, message: str) -> None:
    """Progress nobody is told of (models re-checked at start)."""


@dataclass(frozen=True)
class InstallContext:
    """One install: the model and its verified manifest, and what the steps found so far."""

    ref: ModelRef
    manifest: dict[str, Any]
    signed_manifest: Signed
    progress: Progress = _unheard
    path: Path | None = None                  # download, verify
    runner: ModelRunner | None = None         # load
    validation: ValidationReport | None = None   # validate
    budget: LatencyBudget | None = None       # validate: what probation holds it to
    replaced: LiveModel | None = None         # swap: what served before, if anything

    @classmethod
    def of(cls, entry: DesiredEntry, progress: Progress = _unheard) -> InstallContext:
        return cls(entry.ref, entry.manifest, entry.signed_manifest, progress)

    def with_(self, **found: Any) -> InstallContext:
        return dataclasses.replace(self, **found)

    def report(self, state: str, message: str) -> None:
        self.progress(self.ref, state, message)


class Step(Protocol):
    """One named step; raises an AgentError when it refuses the model."""

    name: str

    def __call__(self, ctx: InstallContext) -> InstallContext: ...


class Installer:
    """Runs a model through its steps. ``failpoints``: after each step, an armed failpoint of
    the step's name kills the agent (``agent.failpoints``; the install path's installer only,
    so a kill at "verify" is one during an update, not during start-up's re-check)."""

    def __init__(self, steps: Iterable[Step], *, failpoints: bool = False) -> None:
        self.steps = tuple(steps)
        self._failpoints = failpoints
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError(f"step names must be unique: {names}")

    def run(self, ctx: InstallContext) -> InstallContext:
        """Run every step in order; returns the context the last one returned.

        Raises InstallStepError (a step refused the model; ``step`` names it, ``__cause__`` is
        its error), AgentTransportError (the download was interrupted: try again later).
        """
        for step in self.steps:
            try:
                ctx = step(ctx)
            except AgentTransportError:
                raise
            except AgentError as exc:
                raise InstallStepError(step.name, exc) from exc
            if self._failpoints:
                failpoints.hit(step.name)
        return ctx


# -- the steps --------------------------------------------------------------------------------


class Download:
    """Fetch the artifact into the store (or find it there), resuming an interrupted stream."""

    name = "download"

    def __init__(self, link: ServerLink, store: AgentStore, settings: AgentSettings,
                 stop: threading.Event) -> None:
        self._link, self._store, self._settings, self._stop = link, store, settings, stop

    def __call__(self, ctx: InstallContext) -> InstallContext:
        """Raises ArtifactMismatchError, AgentTransportError (see ``download_artifact``),
        InsufficientStorageError (no room for it beside the kept artifacts: checked before the
        first byte, and before "downloading" is told, so a retry each pass stays quiet)."""
        sha256, size = ctx.manifest["sha256"], ctx.manifest["size"]
        if not self._store.artifact_path(sha256).exists():
            self._store.check_room(sha256, size, reserve=self._settings.min_free_bytes)
        ctx.report("downloading", f"{size} bytes")
        path = download_artifact(self._link.stub, self._store, ctx.manifest,
                                 settings=self._settings, metadata=self._link.metadata(),
                                 stop=self._stop)
        return ctx.with_(path=path)


class Verify:
    """The file about to be loaded has the signed manifest's length and sha256.

    The download checked its bytes before moving them into place; this checks the file the
    interpreter will open, as every start does for the models it reloads.
    """

    name = "verify"

    def __init__(self, store: AgentStore) -> None:
        self._store = store

    def __call__(self, ctx: InstallContext) -> InstallContext:
        """Raises ArtifactMismatchError (missing, or not the manifest's bytes: then deleted)."""
        path = self._store.verified_artifact(ctx.manifest)
        if path is None:
            raise ArtifactMismatchError(f"artifact {ctx.ref.sha256[:12]} is missing from disk")
        ctx.report("verified", "length and sha256 match the signed manifest")
        return ctx.with_(path=path)


class Load:
    """A fresh runner (its own interpreters) whose tensors match the manifest."""

    name = "load"

    def __init__(self, settings: AgentSettings) -> None:
        self._settings = settings

    def __call__(self, ctx: InstallContext) -> InstallContext:
        """Raises ModelLoadError, ConfigurationError (no interpreter installed)."""
        path = _found(ctx.path, "path", self.name)
        return ctx.with_(runner=ModelRunner(path, ctx.manifest, settings=self._settings))


class Validate:
    """The loaded runner passes its smoke test before anyone is served by it, within the latency
    budget relative to what the manifest says its interpreter measured (``agent.budget``)."""

    name = "validate"

    def __init__(self, settings: AgentSettings) -> None:
        self._settings = settings

    def __call__(self, ctx: InstallContext) -> InstallContext:
        """Raises ValidationError."""
        runner = _found(ctx.runner, "runner", self.name)
        budget = latency_budget(ctx.manifest, runner.interpreter_info.name, self._settings)
        return ctx.with_(validation=runner.validate(budget), budget=budget)


class Prove:
    """The loaded runner reproduces the variant's golden samples (``protos.contract.golden``):
    the outputs the control plane saw a correct interpreter give, within the manifest's
    tolerance. A manifest without golden samples has only the smoke test (``Validate``).

    The samples are an artifact of their own, referenced by sha256 and size from the signed
    manifest, fetched (resumably, checked like a model) into the store beside the model.
    """

    name = "prove"

    def __init__(self, link: ServerLink, store: AgentStore, settings: AgentSettings,
                 stop: threading.Event) -> None:
        self._link, self._store, self._settings, self._stop = link, store, settings, stop

    def __call__(self, ctx: InstallContext) -> InstallContext:
        """Raises IncompatibleVariantError (outputs off), ArtifactMismatchError (the samples
        file is not the manifest's, or is malformed), AgentTransportError."""
        ref_json = ctx.manifest.get("golden")
        if ref_json is None:
            return ctx
        runner = _found(ctx.runner, "runner", self.name)
        outputs = [TensorSpec.from_json(t) for t in ctx.manifest["outputs"]]
        ref = GoldenRef.from_json(ref_json, outputs)   # verified with the manifest
        if ref.size > self._settings.max_golden_bytes:
            raise ArtifactMismatchError(
                f"golden samples are {ref.size} bytes, above max_golden_bytes "
                f"{self._settings.max_golden_bytes}")
        path = download_artifact(self._link.stub, self._store,
                                 {"sha256": ref.sha256, "size": ref.size},
                                 settings=self._settings, metadata=self._link.metadata(),
                                 stop=self._stop)
        try:
            samples = golden.decode(path.read_bytes(), ref,
                                    [TensorSpec.from_json(t) for t in ctx.manifest["inputs"]],
                                    outputs)
        except ContractError as exc:
            raise ArtifactMismatchError(f"golden samples: {exc}") from exc
        answers: dict[str, list[Any]] = {t.name: [] for t in outputs}
        for k in range(samples.samples):
            try:
                got = runner.predict({name: x[k] for name, x in samples.inputs.items()})
            except AgentError as exc:
                raise IncompatibleVariantError(
                    f"golden sample {k} did not run: {exc}",
                    finding=Finding(GOLDEN_MISMATCH, sample=k)) from exc
            for name in answers:
                answers[name].append(got[name])
        found = golden.mismatch(samples, {n: np.stack(v) for n, v in answers.items()},
                                ref.atol)
        info = runner.interpreter_info
        if found is not None:
            raise IncompatibleVariantError(
                f"{ctx.ref.variant} does not reproduce its golden samples in {info.name} "
                f"{info.version}: {found}",
                finding=Finding(GOLDEN_MISMATCH, observed=found.error, limit=found.limit,
                                sample=found.sample, output=found.output))
        ctx.report("proven", f"{samples.samples} golden sample(s) reproduced in {info.name} "
                             f"{info.version}")
        return ctx


class Swap:
    """Make the validated runner answer for its model name, keep that on disk, say so, and put
    the new model on probation.

    The swap is a reference flip in the live table (``agent.serving``): requests in flight
    finish on the runner they started with, which is released when the last of them returns.
    A rollback's swap (``rollback`` set) does not keep what it replaced as the previous version
    and starts no probation: it goes back to a version that already served here.
    """

    name = "swap"

    def __init__(self, board: StatusBoard, persist: Callable[[], None], announce: Progress,
                 probation: Probation | None, *, rollback: str = "") -> None:
        self._board, self._persist, self._announce = board, persist, announce
        self._probation, self._rollback = probation, rollback

    def __call__(self, ctx: InstallContext) -> InstallContext:
        runner = _found(ctx.runner, "runner", self.name)
        validation = _found(ctx.validation, "validation", self.name)
        message = self._rollback or f"validated, median latency {validation.latency_ms:.2f} ms"
        live = LiveModel(ctx.ref, runner, ctx.signed_manifest)
        replaced = self._board.activate(live, message, keep_replaced=not self._rollback)
        if self._probation is not None:   # before the persist: a restart resumes the watch
            if self._rollback:
                self._probation.end(ctx.ref.model)
            else:
                self._probation.begin(ctx.ref, _found(ctx.budget, "budget", self.name))
        failpoints.hit("flip")
        self._persist()   # before the server hears "active": a restart serves what it heard
        failpoints.hit("persist")
        self._announce(ctx.ref, "active", message)
        return ctx.with_(replaced=replaced)


class Stage:
    """Keep the proven model as its model's staged version instead of swapping it in (the
    desired state holds it), keep that on disk and say so: what serves is unchanged, and the
    runner is let go (``unstage_steps`` loads the file again when the hold is lifted)."""

    name = "stage"

    def __init__(self, board: StatusBoard, persist: Callable[[], None],
                 announce: Progress) -> None:
        self._board, self._persist, self._announce = board, persist, announce

    def __call__(self, ctx: InstallContext) -> InstallContext:
        validation = _found(ctx.validation, "validation", self.name)
        message = (f"proven, median latency {validation.latency_ms:.2f} ms; held by the "
                   "desired state, not serving")
        self._board.stage(ActiveModel(ctx.ref, ctx.signed_manifest), message)
        self._persist()   # before the server hears "staged": a restart does not redo it
        self._announce(ctx.ref, "staged", message)
        return ctx.with_(runner=None)


def install_steps(*, link: ServerLink, store: AgentStore, settings: AgentSettings,
                  stop: threading.Event, board: StatusBoard, persist: Callable[[], None],
                  announce: Progress, probation: Probation | None = None) -> list[Step]:
    """The steps a model the desired state wants goes through."""
    return [Download(link, store, settings, stop),
            *_proving_steps(link=link, store=store, settings=settings, stop=stop),
            Swap(board, persist, announce, probation)]


def stage_steps(*, link: ServerLink, store: AgentStore, settings: AgentSettings,
                stop: threading.Event, board: StatusBoard, persist: Callable[[], None],
                announce: Progress) -> list[Step]:
    """The steps a model the desired state holds goes through: all but the swap."""
    return [Download(link, store, settings, stop),
            *_proving_steps(link=link, store=store, settings=settings, stop=stop),
            Stage(board, persist, announce)]


def unstage_steps(*, link: ServerLink, store: AgentStore, settings: AgentSettings,
                  stop: threading.Event, board: StatusBoard, persist: Callable[[], None],
                  announce: Progress, probation: Probation | None = None) -> list[Step]:
    """The steps a staged model goes live through once its hold is lifted: its file is on disk
    (checked again, not downloaded) and it is proven again by a fresh runner before the swap."""
    return [*_proving_steps(link=link, store=store, settings=settings, stop=stop),
            Swap(board, persist, announce, probation)]


def _proving_steps(*, link: ServerLink, store: AgentStore, settings: AgentSettings,
                   stop: threading.Event) -> list[Step]:
    """Verify -> load -> validate -> prove: what every new model passes before it may serve."""
    return [Verify(store), Load(settings), Validate(settings), Prove(link, store, settings, stop)]


def restore_steps(*, store: AgentStore, settings: AgentSettings) -> list[Step]:
    """The steps a model the data dir kept goes through again at start, before it goes live."""
    return [Verify(store), Load(settings), Validate(settings)]


def reactivate_steps(*, store: AgentStore, settings: AgentSettings, board: StatusBoard,
                     persist: Callable[[], None], announce: Progress,
                     probation: Probation | None = None, rollback: str = "") -> list[Step]:
    """The steps a kept previous version goes back live through: checked as at start (its file
    is on disk, nothing is downloaded), then swapped in. ``rollback``: the message of a local
    rollback (see ``Swap``)."""
    return [*restore_steps(store=store, settings=settings),
            Swap(board, persist, announce, probation, rollback=rollback)]


def _found(value: T | None, what: str, step: str) -> T:
    """What an earlier step should have put in the context (a step list in the wrong order is
    a bug, not a refused model)."""
    if value is None:
        raise RuntimeError(f"step {step!r} needs the {what} from an earlier step")
    return value
