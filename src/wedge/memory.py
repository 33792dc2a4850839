"""Memory estimates made before any allocation, and the guard that refuses what cannot fit.

:func:`estimate_memory` adds up, in bytes: the input images (float32 on the device), the
volume and the method's working arrays (:attr:`~wedge.methods.registry.MethodInfo.work_volumes`
volume-sized and ``work_images`` tilt-series-sized float32 arrays, plus any method-specific
extra such as GENFIRE's oversampled Fourier grids), and the projector:

* ``ray-sparse`` / ``voxel-sparse``: the 2D system matrix and its transpose, 8 bytes per
  non-zero each (float32 value + int32 column). Non-zeros per tilt ≤ 3·Z·X (measured
  2.15–2.30 for the ray model with ``n_sub`` ≥ 2, 1.6–1.7 with ``n_sub`` = 1, 2.5–2.7 for the
  voxel model), so the estimate is an upper bound;
* ``ray-3d``: its sampling chunk (~4·10⁶ points × 64 bytes);
* ``fourier``: three complex64 oversampled spectra.

:func:`check_memory` compares the total with what the device has free (psutil on the CPU,
``torch.cuda.mem_get_info`` on CUDA) and raises :class:`InsufficientMemoryError` — one
sentence with both figures and a fix — before any work starts.
"""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = [
    "MemoryEstimate",
    "InsufficientMemoryError",
    "estimate_memory",
    "projector_bytes",
    "available_bytes",
    "check_memory",
    "format_bytes",
]

_F32 = 4
_SPARSE_NNZ_PER_VOXEL_TILT = 3.0
_RAY3D_CHUNK_BYTES = (1 << 22) * 64


class InsufficientMemoryError(ValueError):
    """A run would need more memory than the device has free."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a reconstruction needs, by part; ``total`` is their sum."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return int(sum(self.parts.values()))


def format_bytes(n: float) -> str:
    """``1.2 GB`` style (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def _padded(n: int, oversampling: float) -> int:
    return max(n, int(math.ceil(n * oversampling)))


def projector_bytes(
    name: str,
    volume_shape: tuple[int, int, int],
    data_shape: tuple[int, ...],
    n_sub: int | None = None,
    oversampling: float | None = None,
) -> int:
    """Upper estimate of the memory the registered projector ``name`` holds or allocates."""
    nz, ny, nx = volume_shape
    n, nu = data_shape[0], data_shape[-1]
    if name in ("ray-sparse", "voxel-sparse"):
        nnz = _SPARSE_NNZ_PER_VOXEL_TILT * n * nz * nx
        return int(2 * 8 * nnz + 4 * (n * nu + nz * nx + 2))
    if name == "ray-3d":
        return _RAY3D_CHUNK_BYTES
    if name == "fourier":
        os_ = 3.0 if oversampling is None else oversampling
        cells = _padded(nz, os_) * _padded(ny, os_) * _padded(nx, os_)
        return int(3 * 8 * cells)
    return 0


def estimate_memory(
    volume_shape: tuple[int, int, int],
    data_shape: tuple[int, ...],
    *,
    work_volumes: float,
    work_images: float,
    projector: str | None = None,
    n_sub: int | None = None,
    oversampling: float | None = None,
    extra: int = 0,
) -> MemoryEstimate:
    """The memory a reconstruction needs (see the module notes for the model)."""
    vol = _F32 * math.prod(volume_shape)
    img = _F32 * math.prod(data_shape)
    parts = {
        "images": img,
        "volume and working volumes": int(vol * (1 + work_volumes)),
        "working images": int(img * work_images),
    }
    if projector is not None:
        parts[f"projector {projector}"] = projector_bytes(
            projector, volume_shape, data_shape, n_sub=n_sub, oversampling=oversampling
        )
    if extra:
        parts["method extra"] = int(extra)
    return MemoryEstimate(parts)


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: psutil's available RAM on the CPU, free CUDA memory on a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def check_memory(
    estimate: MemoryEstimate, device: torch.device, what: str, available: int | None = None
) -> None:
    """Raise :class:`InsufficientMemoryError` when ``estimate`` exceeds the free memory."""
    free = available_bytes(device) if available is None else int(available)
    if estimate.total <= free:
        return
    big = max(estimate.parts, key=estimate.parts.get)  # type: ignore[arg-type]
    raise InsufficientMemoryError(
        f"{what} needs about {format_bytes(estimate.total)} (largest part: {big}, "
        f"{format_bytes(estimate.parts[big])}) but only {format_bytes(free)} is free on "
        f"{device}; reconstruct a smaller volume (thickness, volume_shape, binned images) or "
        "use a machine with more memory."
    )
