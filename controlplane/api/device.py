"""DeviceService: what agents call. A device principal only ever reaches its own rows.

The sync hot path is answered from this server's memory (``fleet.desired_cache``, kept fresh
by ``controlplane.notify``) and otherwise costs one primary-key read (the device's
``DesiredState``) and no write: last-seen times are buffered here and written in batches by
``LastSeenBuffer.flush``. ``Watch`` streams wake on the same notifications (``fleet.watchers``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa

from controlplane.api import convert
from controlplane.api.errors import rpc, stream_rpc
from controlplane.app import ControlPlane
from controlplane.auth.interceptor import current_principal
from controlplane.fleet import services as fleet
from controlplane.fleet.desired_cache import CachedState
from controlplane.fleet.watchers import WatchHub
from controlplane.rollouts import services as rollouts
from controlplane.telemetry import services as telemetry
from protos import edgefleet_pb2 as pb
from protos import edgefleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class LastSeenBuffer:
    """Latest sync time per device, written to the database in one batch per flush."""

    def __init__(self) -> None:
        self._seen: dict[str, dt.datetime] = {}

    def mark(self, device_id: str, at: dt.datetime) -> None:
        self._seen[device_id] = at

    def take(self) -> dict[str, dt.datetime]:
        seen, self._seen = self._seen, {}
        return seen

    async def run(self, plane: ControlPlane, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            await self.flush(plane)

    async def flush(self, plane: ControlPlane) -> None:
        batch = self.take()
        if not batch:
            return

        def work() -> None:
            with plane.tx() as s:
                fleet.touch_last_seen(s, batch)

        try:
            await plane.run_db(work)
        except Exception:
            log.exception(
                "could not write %d last-seen times; keeping them for the next flush", len(batch)
            )
            for k, v in batch.items():
                self._seen.setdefault(k, v)


class DeviceServicer(pb_grpc.DeviceServiceServicer):
    def __init__(self, plane: ControlPlane, last_seen: LastSeenBuffer,
                 watchers: WatchHub) -> None:
        self.plane = plane
        self.last_seen = last_seen
        self.watchers = watchers

    @rpc
    async def Enroll(self, request: pb.EnrollRequest, context: Any) -> pb.EnrollResponse:
        token_id = current_principal().id
        hardware = convert.hardware_to_dict(request.hardware)

        def work() -> pb.EnrollResponse:
            with self.plane.tx() as s:
                device, credential = fleet.enroll_device(
                    s,
                    enrollment_token_id=token_id,
                    name=request.name,
                    hardware=hardware,
                    labels=dict(request.labels),
                    settings=self.plane.settings,
                    now=self.plane.clock(),
                    enrollment_key=request.enrollment_key,
                )
                return pb.EnrollResponse(device_id=device.id, device_token=credential)

        try:
            enrolled = await self.plane.run_db(work)
        except sa.exc.IntegrityError:
            # Two Enrolls with one key raced (the agent retried while its first call still
            # ran): the unique index let one device in, and a second run finds that one.
            enrolled = await self.plane.run_db(work)
        # A repeated Enroll replaced the device's credential: the old one must stop working
        # here at once, not when its cache entry expires (other servers: auth_cache_seconds).
        self.plane.credentials.forget(enrolled.device_id)
        return enrolled

    @rpc
    async def Sync(self, request: pb.SyncRequest, context: Any) -> pb.SyncResponse:
        device_id = current_principal().id
        plane = self.plane
        now = plane.clock()
        self.last_seen.mark(device_id, now)
        known = request.known_sequence
        if not request.HasField("hardware"):
            # The common case, on the event loop: no thread hop, no database.
            cached = plane.desired_cache.lookup(device_id, known, now)
            if cached is not None:
                return self._sync_response(cached, known)
        hardware = (
            convert.hardware_to_dict(request.hardware) if request.HasField("hardware") else None
        )

        def work() -> CachedState:
            token = plane.desired_cache.fill_token()
            # A plain poll only reads (on SQLite it must not queue for the write lock); the rare
            # re-sign of an expiring document writes in it all the same.
            with plane.tx() if hardware is not None else plane.read() as s:
                if hardware is not None:
                    fleet.set_hardware(s, device_id, hardware, now=now, settings=plane.settings)
                fleet.desired_for_sync(s, device_id, known, signer=plane.signer,
                                       settings=plane.settings, now=now)
                current = fleet.cached_desired(s, device_id)
            plane.desired_cache.put(device_id, current, token)
            return current

        return self._sync_response(await plane.run_db(work), known)

    def _sync_response(self, state: CachedState, known_sequence: int) -> pb.SyncResponse:
        resp = pb.SyncResponse(poll_interval_seconds=self.plane.settings.poll_interval_seconds)
        if state.has_document and state.sequence > known_sequence:
            resp.desired_state.CopyFrom(pb.SignedDocument(
                payload=state.payload, signature=state.signature, key_id=state.key_id))
        return resp

    @stream_rpc
    async def Watch(self, request: pb.WatchRequest, context: Any) -> Any:
        """Events for the caller's own device: its newest sequence when it changes (and at once
        when it is already above ``known_sequence``), keepalives between, closed (OK) after
        ``watch_max_seconds``. Raises ResourceExhaustedError past ``watch_max_streams``."""
        device_id = current_principal().id
        plane, settings = self.plane, self.plane.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.watch_max_seconds
        with self.watchers.open(device_id) as watch:   # before the read: no change slips by

            def latest() -> int:
                with plane.read() as s:
                    return fleet.cached_desired(s, device_id).sequence

            cached = plane.desired_cache.lookup(device_id, 0, plane.clock())
            current = cached.sequence if cached is not None else await plane.run_db(latest)
            if current > request.known_sequence:
                yield pb.WatchEvent(desired_sequence=current)
            while (remaining := deadline - loop.time()) > 0:
                heard = await watch.next(min(settings.watch_keepalive_seconds, remaining))
                if heard is not None:
                    yield pb.WatchEvent(desired_sequence=heard)
                elif deadline - loop.time() > 0:
                    yield pb.WatchEvent(keepalive=True)

    @stream_rpc
    async def DownloadArtifact(self, request: pb.DownloadRequest, context: Any) -> Any:
        device_id = current_principal().id
        plane = self.plane

        def open_download() -> fleet.Download:
            with plane.read() as s:
                return fleet.open_download(s, plane.store, device_id, request.sha256,
                                           offset=request.offset,
                                           chunk_bytes=plane.settings.chunk_bytes)

        download = await plane.run_db(open_download)
        loop = asyncio.get_running_loop()
        offset = request.offset
        reading: concurrent.futures.Future[bytes | None] | None = None
        try:
            while True:
                reading = plane.executor.submit(next, download.chunks, None)
                data = await asyncio.wrap_future(reading)
                reading = None
                if data is None:
                    break
                yield pb.ArtifactChunk(offset=offset, data=data, total_size=download.size)
                offset += len(data)
        finally:
            if reading is not None:
                # Cancelled (the device went away) while a thread still reads a chunk: the
                # file is closed when that read returns, not under it ("generator already
                # executing").
                reading.add_done_callback(lambda _: download.close())
            else:
                await loop.run_in_executor(plane.executor, download.close)

    @rpc
    async def ReportStatus(self, request: pb.StatusReport, context: Any) -> pb.ReportAck:
        """Malformed events are refused one by one in the acknowledgement (``telemetry``)."""
        device_id = current_principal().id
        now = self.plane.clock()
        events = [convert.install_event(e) for e in request.events]

        def work() -> pb.ReportAck:
            with self.plane.tx() as s:
                outcome = telemetry.record_status(
                    s, device_id, events, settings=self.plane.settings, now=now)
                # an install outcome moves the device's rollout now, not at the next tick
                # (the models of the events stored: a refused one may hold anything)
                refused = {r.id for r in outcome.rejections}
                rollouts.nudge(s, device_id, (e.model for i, e in enumerate(events)
                                              if e.model and str(i) not in refused),
                               settings=self.plane.settings)
                return convert.report_ack(outcome)

        return await self.plane.run_db(work)

    @rpc
    async def ReportMetrics(self, request: pb.MetricsReport, context: Any) -> pb.ReportAck:
        """Malformed windows are refused one by one in the acknowledgement (``telemetry``)."""
        device_id = current_principal().id
        now = self.plane.clock()
        windows = [convert.metric_window(w) for w in request.windows]

        def work() -> pb.ReportAck:
            with self.plane.tx() as s:
                return convert.report_ack(telemetry.record_metrics(
                    s, device_id, windows, settings=self.plane.settings, now=now))

        return await self.plane.run_db(work)
