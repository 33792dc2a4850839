"""Render a field to a voxel grid of any size, a chunk of points at a time.

A (Z, Y, X) grid over the volume box samples the field at the voxel centres, normalised
coordinates ``(2i + 1)/N − 1`` along each axis (the box is [−1, 1]³ whatever the grid size,
so a finer grid is an up-sampled rendering of the same object). Points go through the
network ``chunk`` at a time without gradients, so the temporary memory is about
``chunk × width × 4 bytes × 3`` however large the grid; only the output is grid-sized.
:func:`render_bytes` estimates both before anything is allocated and :func:`render_volume`
refuses a grid that will not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..memory import MemoryEstimate, check_memory

__all__ = ["render_volume", "render_bytes", "render_checkpoint", "DEFAULT_CHUNK"]

#: points per network call when rendering
DEFAULT_CHUNK = 1 << 16


def render_bytes(shape: Sequence[int], width: int, chunk: int = DEFAULT_CHUNK) -> MemoryEstimate:
    """Memory of :func:`render_volume`: the float32 output and one chunk's activations."""
    n = math.prod(int(s) for s in shape)
    return MemoryEstimate(
        {
            "rendered volume": 4 * n,
            "one chunk of activations": 4 * min(chunk, n) * (3 * int(width) + 8),
        }
    )


def _axis(n: int, device: torch.device) -> torch.Tensor:
    return (2.0 * torch.arange(n, device=device, dtype=torch.float32) + 1.0) / n - 1.0


@torch.no_grad()
def render_volume(
    field: Callable[[torch.Tensor], torch.Tensor],
    shape: Sequence[int],
    *,
    width: int,
    device: torch.device | str = "cpu",
    chunk: int = DEFAULT_CHUNK,
    z_range: tuple[int, int] | None = None,
    available: int | None = None,
) -> torch.Tensor:
    """The field at the voxel centres of a (Z, Y, X) grid over the box, float32.

    Parameters
    ----------
    field : callable
        Normalised (x, y, z) points (P, 3) → values (P,).
    shape : (Z, Y, X)
        Grid size (any: the box is the same, the sampling finer or coarser).
    width : int
        Hidden width of the field (for the memory estimate).
    device : torch device
    chunk : int
        Points per network call.
    z_range : (z0, z1), optional
        Render only these Z planes (the rest stays zero): used to share a render across
        ranks.
    available : int, optional
        Free bytes to check against (default: what the device reports).

    Raises
    ------
    ValueError
        A non-positive shape or chunk; :class:`wedge.memory.InsufficientMemoryError` when
        the grid does not fit, before any allocation.
    """
    shp = tuple(int(s) for s in shape)
    if len(shp) != 3 or min(shp) < 1:
        raise ValueError(f"render shape must be 3 positive integers (Z, Y, X), got {shape!r}.")
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of points, got {chunk}.")
    dev = torch.device(device)
    check_memory(render_bytes(shp, width, chunk), dev, f"rendering a {shp} grid", available)
    nz, ny, nx = shp
    out = torch.zeros(shp, dtype=torch.float32, device=dev)
    z0, z1 = (0, nz) if z_range is None else z_range
    zs, ys, xs = _axis(nz, dev), _axis(ny, dev), _axis(nx, dev)
    plane = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)  # (y, x)
    per = max(1, chunk // (ny * nx))  # whole planes per call when they fit
    if ny * nx <= chunk:
        for z in range(z0, z1, per):
            zz = zs[z : min(z + per, z1)]
            pts = torch.cat(
                [
                    plane[None, :, 1:2].expand(zz.numel(), -1, -1),
                    plane[None, :, 0:1].expand(zz.numel(), -1, -1),
                    zz[:, None, None].expand(-1, ny * nx, 1),
                ],
                -1,
            ).reshape(-1, 3)
            out[z : z + zz.numel()] = field(pts).reshape(zz.numel(), ny, nx)
        return out
    for z in range(z0, z1):  # planes larger than a chunk: split each plane
        flat = out[z].view(-1)
        for a in range(0, ny * nx, chunk):
            yx = plane[a : a + chunk]
            pts = torch.cat([yx[:, 1:2], yx[:, 0:1], zs[z].expand(yx.shape[0], 1)], -1)
            flat[a : a + yx.shape[0]] = field(pts)
    return out


def render_checkpoint(
    checkpoint: str | Path,
    shape: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Render the field of an ``inr`` checkpoint on a (Z, Y, X) grid of any size.

    The checkpoint (``wedge.reconstruct(…, "inr", checkpoint=path)``) is read with
    ``weights_only=True``; the values are in wedge's units (line-integral density per voxel
    of the reconstruction's grid), so a grid twice as fine shows the same densities.
    The field is the network of the checkpoint's last epoch.

    Raises
    ------
    ValueError
        The file holds no ``inr`` network; InsufficientMemoryError as :func:`render_volume`.
    """
    from .field import HSiren

    payload = torch.load(checkpoint, map_location=device, weights_only=True)
    state = payload.get("state", {}) if isinstance(payload, dict) else {}
    net_state = state.get("net") if isinstance(state, dict) else None
    if not isinstance(net_state, dict) or "out.weight" not in net_state:
        raise ValueError(f"{checkpoint} is not a checkpoint of the inr method.")
    depth = sum(1 for k in net_state if k.startswith("hidden.") and k.endswith(".weight"))
    width = int(net_state["out.weight"].shape[1])
    net = HSiren(width, depth).to(device)
    net.load_state_dict(net_state)
    net.requires_grad_(False)
    vol = render_volume(net, shape, width=width, device=device, chunk=chunk)
    return vol * float(state["field_scale"])
