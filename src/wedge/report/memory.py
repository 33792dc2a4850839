"""Peak memory of one reconstruction run, on CUDA or on the CPU.

CUDA: :func:`torch.cuda.max_memory_allocated` (bytes held by tensors at the peak, absolute:
it includes the data the run copied to the device), reset when the measurement starts.

CPU: the rise of the process's resident set size (RSS) above its value when the measurement
starts. On Linux the kernel's own high-water mark ``VmHWM`` is reset by writing ``5`` to
``/proc/self/clear_refs`` and read back from ``/proc/self/status`` at the end, which catches
every peak however short. Where that file is not writable (other systems, some sandboxes) a
background thread samples the RSS every ``interval_s`` seconds instead, which can miss peaks
shorter than the interval. Before the baseline is taken, Python's garbage is collected and
glibc's free heap returned to the system (``malloc_trim``), so that memory freed by an
earlier run is not silently reused and hidden from the next one.

:meth:`PeakMemory.paused` excludes work done for the report (per-iteration metrics against
the reference) from the figure: the peak so far is banked, and the high-water mark is reset
when the pause ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["PeakMemory"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(key: str) -> int | None:
    """A ``kB`` field of /proc/self/status (``VmRSS``, ``VmHWM``), or None if unavailable."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import resource  # not Linux: the lifetime maximum is the best available figure

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _reset_hwm() -> bool:
    """Reset the kernel's peak-RSS mark; False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _trim_heap(collect: bool = True) -> None:
    if collect:
        gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Measure the peak memory of a block of work on ``device``.

    Use as a context manager; after the block, :attr:`peak_bytes` holds the figure and
    :attr:`kind` says what it is (``"cuda allocated"``, ``"cpu rss increase"`` or
    ``"cpu rss increase (sampled)"``).

    Parameters
    ----------
    device : torch.device
        Where the work runs.
    interval_s : float
        Sampling interval of the fallback RSS sampler, seconds.
    """

    def __init__(self, device: torch.device, interval_s: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval_s = float(interval_s)
        self.peak_bytes: int = 0
        self.kind = ""
        self._banked = 0
        self._baseline = 0
        self._hwm = False
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampled = 0

    # ------------------------------------------------------------------ CPU sampler
    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not self._paused.is_set():
                self._sampled = max(self._sampled, _rss_bytes())

    def _current_peak(self) -> int:
        """The peak since the last reset, absolute (bytes)."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self._hwm:
            kib = _status_kib("VmHWM")
            return 0 if kib is None else kib * 1024
        return max(self._sampled, _rss_bytes())

    def _reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self._hwm:
            _reset_hwm()
        else:
            self._sampled = _rss_bytes()

    # ------------------------------------------------------------------ protocol
    def __enter__(self) -> PeakMemory:
        _trim_heap()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            self.kind = "cuda allocated"
            self._reset()
            return self
        self._baseline = _rss_bytes()
        self._hwm = _reset_hwm()
        if self._hwm:
            self.kind = "cpu rss increase"
        else:
            self.kind = "cpu rss increase (sampled)"
            self._sampled = self._baseline
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        peak = max(self._banked, self._current_peak())
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = max(peak, self._sampled)
        if self.device.type != "cuda":
            peak = max(0, peak - self._baseline)
        self.peak_bytes = int(peak)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Exclude the enclosed work from the measurement (bank the peak so far, then reset)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._banked = max(self._banked, self._current_peak())
        self._paused.set()
        try:
            yield
        finally:
            _trim_heap(collect=False)
            self._paused.clear()
            self._reset()
