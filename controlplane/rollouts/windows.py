"""Maintenance windows: not in this build yet; a plan that asks for one is refused."""

from __future__ import annotations

import datetime as dt
from typing import Any

from controlplane.errors import InvalidArgumentError


class MaintenanceWindow:
    @classmethod
    def parse(cls, cron: str, duration: Any, tz: str, *, settings: Any = None
              ) -> MaintenanceWindow:
        raise InvalidArgumentError("maintenance windows are not supported by this server yet")

    def is_open(self, now: dt.datetime) -> bool:   # never reached: parse refuses every window
        raise NotImplementedError
