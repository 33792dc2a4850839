"""Slab planning for out-of-core reconstruction: the memory budget and the slab width.

:func:`plan_slabs` applies the memory model of :mod:`wedge.outofcore` (see its module
notes) to find the widest Y slab that fits a budget; :func:`parse_size` reads a budget such
as ``"512MB"`` or ``"1.5GiB"``. Both are re-exported by :mod:`wedge.outofcore`, whose
:func:`~wedge.outofcore.parse_memory` adds the default budget.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

from .memory import InsufficientMemoryError, format_bytes, projector_bytes
from .methods.registry import MethodInfo

__all__ = ["SlabPlan", "parse_size", "plan_slabs"]

_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip


def parse_size(memory: str | int | float) -> int:
    """A size in bytes from ``"512MB"``, ``"2GB"``, ``"1.5GiB"`` or a byte count.

    Decimal units (kB, MB, GB, TB = 10³ⁿ bytes, as :func:`wedge.memory.format_bytes`
    prints them) and binary ones (KiB, MiB, GiB, TiB); case and spaces do not matter.

    Raises
    ------
    ValueError
        For anything else, or a size below one byte.
    """
    if isinstance(memory, bool):
        raise ValueError(f"memory must be a size such as '512MB' or '2GB', got {memory!r}.")
    if isinstance(memory, int | float | np.integer | np.floating):
        value, unit = float(memory), ""
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(memory))
        if m is None or m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"memory must be a size such as '512MB', '2GB' or '1.5GiB', got {memory!r}."
            )
        value, unit = float(m.group(1)), m.group(2).lower()
    nbytes = value * _UNITS[unit]
    if not (math.isfinite(nbytes) and nbytes >= 1):
        raise ValueError(f"memory must be a positive size such as '512MB', got {memory!r}.")
    return int(nbytes)


@dataclasses.dataclass(frozen=True)
class SlabPlan:
    """How a volume is cut into Y slabs under a memory budget.

    Attributes
    ----------
    width : int
        Y rows per slab.
    n_slabs : int
    fixed_bytes : int
        Memory independent of the slab width (system matrix, its build peak, temporaries).
    per_row_bytes : int
        Memory per Y row of a slab.
    budget : int
    """

    width: int
    n_slabs: int
    fixed_bytes: int
    per_row_bytes: int
    budget: int

    @property
    def peak_bytes(self) -> int:
        """The model's peak for this plan (≤ budget)."""
        return self.fixed_bytes + self.width * self.per_row_bytes


def plan_slabs(
    volume_shape: tuple[int, int, int],
    data_shape: tuple[int, int, int],
    info: MethodInfo,
    projector: str,
    budget: int,
    *,
    n_sub: int | None = None,
    align: int = 1,
) -> SlabPlan:
    """The widest Y slab whose memory (the notes of
    :mod:`wedge.outofcore`) fits ``budget``.

    ``align`` rounds the width down to a multiple (chunk-aligned OME-Zarr writes) when the
    budget allows at least one multiple.

    Raises
    ------
    wedge.memory.InsufficientMemoryError
        When even one Y row does not fit; the message says how much is needed.
    """
    nz, ny, nx = volume_shape
    n, _, nu = data_shape
    mat = projector_bytes(projector, (nz, 1, nx), (n, 1, nu), n_sub=n_sub)
    factor = 3.0 if info.name in ("sart", "art") else 2.5
    temporaries = 2 * 32 * 4 * (nz * nx + n * nu)  # the projector's Y-chunk copies
    fixed = int(factor * mat) + temporaries
    per_row = 4 * n * nu * (1 + int(math.ceil(info.work_images))) + 4 * nz * nx * (
        2 + int(math.ceil(info.work_volumes))
    )
    width = min(ny, (budget - fixed) // per_row)
    if width < 1:
        need = fixed + per_row
        raise InsufficientMemoryError(
            f"the memory budget {format_bytes(budget)} is below what one Y slab of "
            f"{info.name} needs: {format_bytes(need)} (system matrix and temporaries "
            f"{format_bytes(fixed)}, one Y row {format_bytes(per_row)}); pass a budget of at "
            f"least {format_bytes(need)} (e.g. --memory {math.ceil(need / 1e6)}MB)."
        )
    if align > 1 and width >= align:
        width -= width % align
    return SlabPlan(int(width), -(-ny // int(width)), fixed, per_row, int(budget))
