"""General 3D parallel-beam projector: any Euler angles, per-image pose, differentiable.

Each image pixel casts a ray along the beam direction of its orientation; the volume is
sampled by trilinear interpolation (zero outside) every ``step`` voxels along the ray and
summed times ``step``. Detector pixel (r, c) of image i, with rotation ``R_i`` and shift
(dx, dy), collects the ray through ``p(w) = R_iᵀ (u, v, w)`` with
``u = c − (N_x−1)/2 − dx``, ``v = r − (N_y−1)/2 − dy`` (voxel units, relative to the
volume centre). The adjoint is the vector-Jacobian product of the forward (exact), and
:func:`project_rays` is differentiable with respect to the volume, the rotation matrices
and the shifts, which alignment and implicit-neural-representation methods need.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..geometry import Geometry
from .base import Projector, autograd_adjoint, register_projector

__all__ = ["project_rays", "RayProjector3D", "volume_grid_coordinates"]

#: points sampled per grid_sample call (bounds the temporary memory to ~100 MB)
_CHUNK_POINTS = 1 << 22


def volume_grid_coordinates(p: torch.Tensor, volume_shape: tuple[int, int, int]) -> torch.Tensor:
    """Map points (…, 3) as (x, y, z) relative to the volume centre to grid_sample coordinates.

    Uses ``align_corners=False``: index ``i`` of an axis of size ``n`` sits at
    ``(2 i + 1)/n − 1``; the centre (n−1)/2 is at 0.
    """
    nz, ny, nx = volume_shape
    size = p.new_tensor([nx, ny, nz])
    return 2.0 * p / size


def project_rays(
    volume: torch.Tensor,
    matrices: torch.Tensor,
    shifts: torch.Tensor | None,
    detector_shape: tuple[int, int],
    step: float = 0.5,
) -> torch.Tensor:
    """Line integrals of ``volume`` (Z, Y, X) for images with rotation ``matrices`` (n, 3, 3).

    Parameters
    ----------
    volume : tensor (Z, Y, X)
    matrices : tensor (n, 3, 3)
        ``R_i`` acting on (x, y, z) columns; image position of p is (R_i p)[:2].
    shifts : tensor (n, 2) or None
        (dx, dy) in pixels.
    detector_shape : (ny, nx)
    step : float
        Sampling step along each ray, in voxels.

    Returns
    -------
    tensor (n, ny, nx), differentiable in all tensor arguments.
    """
    vs = tuple(volume.shape)
    nvy, nu = detector_shape
    dev, dt = volume.device, volume.dtype
    half = 0.5 * math.sqrt(sum(s * s for s in vs))
    n_w = int(math.ceil(half / step))
    w_all = torch.arange(-n_w, n_w + 1, device=dev, dtype=dt) * step
    u = torch.arange(nu, device=dev, dtype=dt) - (nu - 1) / 2
    v = torch.arange(nvy, device=dev, dtype=dt) - (nvy - 1) / 2
    inp = volume[None, None]
    per_chunk = max(1, _CHUNK_POINTS // (nvy * nu))
    images = []
    for i in range(matrices.shape[0]):
        r = matrices[i].to(dt)
        uu, vv = u, v
        if shifts is not None:
            uu = u - shifts[i, 0].to(dt)
            vv = v - shifts[i, 1].to(dt)
        # p = Rᵀ (u, v, w) = u·R[0] + v·R[1] + w·R[2]  (rows of R)
        base = uu[None, :, None] * r[0] + vv[:, None, None] * r[1]  # (ny, nx, 3)
        acc = None
        for w0 in range(0, w_all.numel(), per_chunk):
            w = w_all[w0 : w0 + per_chunk]
            pts = base[None] + w[:, None, None, None] * r[2]  # (nw, ny, nx, 3)
            g = volume_grid_coordinates(pts, vs)[None]
            s = F.grid_sample(inp, g, mode="bilinear", padding_mode="zeros", align_corners=False)
            s = s[0, 0].sum(0)
            acc = s if acc is None else acc + s
        images.append(acc * step)
    return torch.stack(images)


@register_projector("ray-3d")
class RayProjector3D(Projector):
    """General-orientation ray projector (trilinear samples every ``step`` voxels)."""

    pose_differentiable = True

    def __init__(self, geometry: Geometry, step: float = 0.5) -> None:
        super().__init__(geometry)
        if not step > 0:
            raise ValueError(f"step must be a positive number of voxels, got {step}.")
        self.step = float(step)
        self.matrices = geometry.matrices(self.device).to(torch.float32)
        sh = geometry.shifts
        self.shifts = None if sh is None else torch.tensor(sh, dtype=torch.float32).to(self.device)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return project_rays(x, self.matrices, self.shifts, self.geometry.detector_shape, self.step)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        # one image at a time keeps autograd's saved sampling grids to one image's worth
        out = torch.zeros(self.volume_shape, device=y.device, dtype=y.dtype)
        for i in range(y.shape[0]):
            sh = None if self.shifts is None else self.shifts[i : i + 1]

            def fwd(x: torch.Tensor, i: int = i, sh: torch.Tensor | None = sh) -> torch.Tensor:
                m = self.matrices[i : i + 1]
                return project_rays(x, m, sh, self.geometry.detector_shape, self.step)

            out += autograd_adjoint(fwd, y[i : i + 1], self.volume_shape)
        return out
