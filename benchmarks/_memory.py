"""Peak resident memory of this process over a block of code (Linux).

``PeakRss`` resets the kernel's high-water mark (``/proc/self/clear_refs`` = 5) when the block
starts and reads ``VmHWM`` when it ends, so the peak covers exactly the block however briefly it
lasted. Where the reset is not allowed it samples ``VmRSS`` on a thread every millisecond
instead, and says so (``method``). On entry it first hands free heap memory back to the kernel
(``gc.collect`` and glibc's ``malloc_trim``), so buffering inside the block cannot hide in pages
that were already resident.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in {_STATUS}")


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def _reset_high_water_mark() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)


class PeakRss:
    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self.method = ""
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def growth(self) -> int:
        """Bytes the peak rose above the resident size at the start."""
        return max(0, self.peak - self.baseline)

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRss:
        release_free_memory()
        self.baseline = self.peak = rss_bytes()
        if _reset_high_water_mark():
            self.method = "VmHWM after clear_refs"
        else:
            self.method = "VmRSS sampled every 1 ms"
            self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
        else:
            self.peak = max(self.peak, _status_kib("VmHWM") * 1024)
