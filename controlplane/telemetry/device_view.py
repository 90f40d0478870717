"""A device as ``GetDevice`` shows it (and ``LabelDevice``, ``RevokeDevice`` answer it): its
record, the latest finding per model about its desired variant, and what arrived from it.

Invariant: a fixed number of queries whatever the device's history: the device's own
(``fleet.get_device``), one for its findings (``telemetry.findings``), one of at most
``device_metrics_max_windows`` windows (``telemetry.device_metrics``), one for its profile
history (at most ``max_profile_history`` rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from controlplane.config import Settings
from controlplane.fleet import services as fleet
from controlplane.fleet.models import Device, HardwareProfileChange
from controlplane.telemetry.device_metrics import DeviceMetrics, read_device_metrics
from controlplane.telemetry.findings import latest_findings


@dataclass(frozen=True)
class DeviceView:
    device: Device
    findings: Mapping[str, dict[str, Any]]   # model name -> finding, as stored
    metrics: DeviceMetrics
    history: Sequence[HardwareProfileChange]   # the profiles it reported, newest first


def show_device(session: Session, device_id: str, *, settings: Settings) -> DeviceView:
    """The device with its findings and metrics. Raises NotFoundError (``fleet.get_device``)."""
    device = fleet.get_device(session, device_id)
    return DeviceView(device=device, findings=latest_findings(session, device),
                      metrics=read_device_metrics(session, device.id, settings=settings),
                      history=fleet.profile_history(session, device.id))
