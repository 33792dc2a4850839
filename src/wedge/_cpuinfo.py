"""CPU model, core count and cache sizes of the machine this process runs on.

Used by the single-axis projector to size its Y chunks (:func:`cpu_info`) and by every
script in ``benchmarks/`` to print the machine beside its figures (:func:`machine_line`).
Cache sizes come from Linux sysfs (``/sys/devices/system/cpu/cpu0/cache/index*``), then
from ``os.sysconf`` where the C library knows them; a size that cannot be read is ``None``
and callers fall back to a conservative value.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CPUInfo", "cpu_info", "machine_line", "load_average", "parse_size", "format_bytes"]

_SYSFS_CACHE = Path("/sys/devices/system/cpu/cpu0/cache")
#: threading settings that change the figures; :func:`machine_line` names those that are set
_THREAD_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class CPUInfo:
    """What the chunk rule and the benchmark reports need to know about the CPU.

    Attributes
    ----------
    model : str
        Marketing name (``model name`` in ``/proc/cpuinfo``), else ``platform`` data.
    logical_cpus : int
        Logical CPUs this process may run on (its affinity mask).
    physical_cores : int or None
        Physical cores when ``psutil`` is installed, else None.
    l1d_bytes, l2_bytes : int or None
        Data L1 and unified L2 of one core.
    l3_bytes : int or None
        One L3 instance (the cache shared by the cores listed in ``l3_shared_by``).
    l3_shared_by : int or None
        Logical CPUs of this machine (or virtual machine) that share that L3. On a
        virtual machine the physical L3 may also serve other tenants.
    """

    model: str
    logical_cpus: int
    physical_cores: int | None
    l1d_bytes: int | None
    l2_bytes: int | None
    l3_bytes: int | None
    l3_shared_by: int | None


def parse_size(text: str) -> int | None:
    """Bytes from a sysfs cache size such as ``"48K"``, ``"1024K"`` or ``"32M"``."""
    s = text.strip().upper().removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    digits = s[:-1] if s[-1:] in "KMG" else s
    try:
        value = int(digits) * mult
    except ValueError:
        return None
    return value if value > 0 else None


def _count_cpus(cpu_list: str) -> int | None:
    """Number of CPUs in a sysfs list such as ``"0-1"`` or ``"0,2-3"``."""
    total = 0
    try:
        for part in cpu_list.strip().split(","):
            lo, _, hi = part.partition("-")
            total += int(hi or lo) - int(lo) + 1
    except ValueError:
        return None
    return total or None


def _sysfs_caches() -> dict[str, tuple[int | None, int | None]]:
    """{'L1d' | 'L2' | 'L3': (bytes, CPUs sharing it)} from sysfs; empty where unreadable."""
    out: dict[str, tuple[int | None, int | None]] = {}
    try:
        entries = sorted(_SYSFS_CACHE.glob("index*"))
    except OSError:
        return out
    for d in entries:
        try:
            level = (d / "level").read_text().strip()
            kind = (d / "type").read_text().strip()
            size = parse_size((d / "size").read_text())
        except OSError:
            continue
        if kind == "Instruction":
            continue
        try:
            shared = _count_cpus((d / "shared_cpu_list").read_text())
        except OSError:
            shared = None
        out[f"L{level}d" if level == "1" else f"L{level}"] = (size, shared)
    return out


def _sysconf(name: str) -> int | None:
    try:
        v = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return None
    return v if v and v > 0 else None


def _model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _logical_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


@functools.lru_cache(maxsize=1)
def cpu_info() -> CPUInfo:
    """The CPU this process runs on (read once, then cached)."""
    caches = _sysfs_caches()
    l1d, _ = caches.get("L1d", (None, None))
    l2, _ = caches.get("L2", (None, None))
    l3, l3_shared = caches.get("L3", (None, None))
    return CPUInfo(
        model=_model_name(),
        logical_cpus=_logical_cpus(),
        physical_cores=_physical_cores(),
        l1d_bytes=l1d or _sysconf("SC_LEVEL1_DCACHE_SIZE"),
        l2_bytes=l2 or _sysconf("SC_LEVEL2_CACHE_SIZE"),
        l3_bytes=l3 or _sysconf("SC_LEVEL3_CACHE_SIZE"),
        l3_shared_by=l3_shared,
    )


def format_bytes(n: int | None) -> str:
    """``1 MiB``, ``48 KiB``, or ``?`` when unknown."""
    if not n:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def load_average() -> str:
    """``load average 1.20 0.85 0.40`` (1, 5, 15 min), to say whether a figure was taken on
    a loaded machine; ``load average unknown`` where the OS does not report it."""
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except (OSError, AttributeError):
        return "load average unknown"


def machine_line(threads: int | None = None, load: bool = True) -> str:
    """One line naming the CPU, its cores, torch's threads, the L2/L3 sizes and the load
    (and any OpenMP/MKL threading variables that are set).

    Parameters
    ----------
    threads : int, optional
        Threads the measured code used; defaults to ``torch.get_num_threads()``.
    load : bool
        Append :func:`load_average`.
    """
    info = cpu_info()
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    cores = f"{info.logical_cpus} logical CPUs"
    if info.physical_cores:
        cores += f" ({info.physical_cores} physical cores)"
    l3 = format_bytes(info.l3_bytes)
    if info.l3_bytes and info.l3_shared_by:
        l3 += f" shared by {info.l3_shared_by} CPUs"
    line = (
        f"CPU: {info.model}, {platform.machine()}, {cores}, torch threads {threads}, "
        f"L2 {format_bytes(info.l2_bytes)}/core, L3 {l3}"
    )
    env = [f"{k}={os.environ[k]}" for k in _THREAD_ENV if os.environ.get(k)]
    if env:
        line += ", " + " ".join(env)
    return f"{line} | {load_average()}" if load else line
