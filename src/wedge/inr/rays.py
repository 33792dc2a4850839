"""Rays through the volume box, the learned pose, and line integrals of a field by sampling.

Geometry (wedge's conventions, docs/conventions.md). Image ``i`` has the nominal rotation
``Rᵢ = Z(α) Z(φᵢ) Y(θᵢ) X(ψᵢ)`` of :meth:`wedge.parameters.AcquisitionParameters.matrices`
(degrees → radians inside). Detector pixel (r, c) has ``u = c − (N_x − 1)/2`` and
``v = r − (N_y − 1)/2`` (pixels from the image centre). Its ray, in the paper's pose order
(Lim et al. §4.1.2), is

1. shifted by the image's (δx, δy): ``q(w) = (u − δx, v − δy, w)``, w along the beam;
2. rotated: ``p(w) = Z(z₃) Rᵢᵀ Z(z₁) q(w)``, the paper's ``R(z₃) R(θ) R(z₁)`` written on
   wedge's nominal rotation (``Rᵢᵀ`` takes image coordinates to volume coordinates).

With ``z₁ = z₃ = 0`` and δ equal to ``TiltSeries.shifts`` this is exactly the ray of
wedge's projectors (:func:`wedge.projectors.general.project_rays`), so an INR and a SIRT of
one series share their voxel grid. In wedge's terms the effective rotation is
``R_eff = Z(−z₁) Rᵢ Z(−z₃)`` and δ the shifts (same sign: the measured image is the ideal
one moved by +δ). An in-plane tilt-axis error α on a single-axis series is
``z₁ = −α, z₃ = 0`` or, with the volume turned by α about z, ``z₁ = −α, z₃ = α``. A
common z₃ (a turn of the whole volume about z) and shifts ``(Rᵢ t)[:2]`` (the volume
moved by t) change no image, so :meth:`Pose.fix_gauge` removes them after every step.

Line integral (voxel lengths, as wedge's projectors): ``Σₖ f(p(wₖ)) h`` over samples
``wₖ = −L/2 + (k + ξ) h``, ``k = 0 … S − 1``, ``S = ⌈L / h⌉`` where L is the box diagonal;
ξ = ½ (midpoints) for evaluation and ξ ~ U(0, 1) per ray (stratified jitter) in training.
Points outside the box count zero (the field's support is the box) and are not evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..geometry import euler_to_matrix, rotation_z

__all__ = [
    "Pose",
    "remove_translation",
    "RayGeometry",
    "n_samples",
    "matrix_to_euler",
    "line_integrals",
]

Field = Callable[[torch.Tensor], torch.Tensor]


def n_samples(volume_shape: tuple[int, int, int], step: float) -> int:
    """Samples per ray at ``step`` voxels: ⌈box diagonal / step⌉."""
    return max(1, math.ceil(math.sqrt(sum(s * s for s in volume_shape)) / step))


class Pose(nn.Module):
    """The learned pose of every image: z₁, z₃ (degrees) and δ = (δx, δy) (pixels).

    Parameters
    ----------
    nominal : tensor (n, 3, 3)
        Nominal rotations ``Rᵢ`` (wedge's, image ← volume).
    shifts : tensor (n, 2)
        Initial (δx, δy), pixels: the series' shifts.
    axis : bool
        Also hold one in-plane axis offset ``a`` (degrees) common to all images, added to
        every image's z₁ (``z₁,eff = a + z₁``; an extension of the paper, which learns z₁
        per image only). :meth:`fix_gauge` then keeps the mean of the per-image z₁ at 0, so
        ``a`` holds the common part and z₁ the deviations.
    per_image : bool
        Whether the per-image z₁, z₃ are learned (:meth:`angles`); False with ``axis``
        learns the common offset alone (a single-axis series: one axis, per-image shifts).
    """

    def __init__(
        self,
        nominal: torch.Tensor,
        shifts: torch.Tensor,
        axis: bool = False,
        per_image: bool = True,
    ) -> None:
        super().__init__()
        n = nominal.shape[0]
        dev = nominal.device
        self.register_buffer("nominal", nominal.to(torch.float64).clone())
        self.register_buffer("shifts0", shifts.to(torch.float64).clone())
        self.z1 = nn.Parameter(torch.zeros(n, dtype=torch.float64, device=dev))
        self.z3 = nn.Parameter(torch.zeros(n, dtype=torch.float64, device=dev))
        self.delta = nn.Parameter(shifts.to(torch.float64).clone())
        self.axis = nn.Parameter(torch.zeros((), dtype=torch.float64, device=dev)) if axis else None
        self.per_image = per_image or not axis
        if not self.per_image:  # held at 0: no gradient, nothing to all-reduce
            self.z1.requires_grad_(False)
            self.z3.requires_grad_(False)

    def angles(self) -> list[nn.Parameter]:
        """The learned angles (degrees): the per-image z₁, z₃ and/or the common offset."""
        own = [self.z1, self.z3] if self.per_image else []
        return own + ([self.axis] if self.axis is not None else [])

    def z1_total(self) -> torch.Tensor:
        """Every image's effective z₁ (n,) degrees: the common axis offset plus its own."""
        return self.z1 if self.axis is None else self.z1 + self.axis

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(M, δ)``: M (n, 3, 3) = Z(z₃) Rᵢᵀ Z(z₁) (image → volume), δ (n, 2) pixels."""
        z1 = rotation_z(torch.deg2rad(self.z1_total()))
        z3 = rotation_z(torch.deg2rad(self.z3))
        return z3 @ self.nominal.transpose(1, 2) @ z1, self.delta

    @torch.no_grad()
    def fix_gauge(self) -> None:
        """Remove what changes no image: a common z₃ (a turn of the volume about z: mean z₃
        kept at 0) and a translation t of the volume (shift changes ``(R_eff,i t)[:2]``
        fitted by least squares and removed from δ − δ₀, :func:`remove_translation`). With
        the common axis offset, the mean of the per-image z₁ is moved into it (no image
        changes)."""
        self.z3.sub_(self.z3.mean())
        if self.axis is not None:
            mean = self.z1.mean()
            self.axis.add_(mean)
            self.z1.sub_(mean)
        e = remove_translation(self.delta - self.shifts0, self.rotations())
        self.delta.copy_(self.shifts0 + e)

    def rotations(self) -> torch.Tensor:
        """The effective rotations ``R_eff = Z(−z₁) Rᵢ Z(−z₃)`` (n, 3, 3), wedge's form."""
        m, _ = self.effective()
        return m.transpose(1, 2)


def remove_translation(d: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Shift changes ``d`` (n, 2) px minus the part a 3D translation of the volume explains.

    A volume moved by t (voxels, x y z) appears in image i moved by ``(Rᵢ t)[:2]``; t is
    fitted by least squares (a minimum-norm solution where the tilts leave a direction
    unseen) and its image shifts are subtracted. Use it to compare shifts up to that gauge.
    """
    a = rotations.detach().to(torch.float64)[:, :2, :]  # (n, 2, 3)
    dd = d.detach().to(torch.float64)
    t = torch.linalg.lstsq(a.reshape(-1, 3), dd.reshape(-1, 1)).solution
    if not torch.isfinite(t).all():  # pragma: no cover  (rank-deficient and unlucky)
        t = torch.linalg.pinv(a.reshape(-1, 3)) @ dd.reshape(-1, 1)
    return (dd - (a @ t).squeeze(-1)).to(d.dtype)


def matrix_to_euler(r: torch.Tensor, near: torch.Tensor) -> torch.Tensor:
    """ZYX Euler angles (φ, θ, ψ) in degrees of rotations ``r`` (n, 3, 3), ``r = Z(φ)Y(θ)X(ψ)``.

    Of the two solutions, (φ, θ, ψ) and (φ + 180, 180 − θ, ψ + 180), the one whose θ is
    closer to ``near`` (n,) degrees is returned, angles wrapped to (−180, 180].
    """
    r = r.detach().to(torch.float64)
    near = near.detach().to(r)
    theta = torch.asin(torch.clamp(-r[:, 2, 0], -1.0, 1.0))
    psi = torch.atan2(r[:, 2, 1], r[:, 2, 2])
    phi = torch.atan2(r[:, 1, 0], r[:, 0, 0])
    a = torch.rad2deg(torch.stack([phi, theta, psi], 1))
    b = torch.stack([a[:, 0] + 180.0, 180.0 - a[:, 1], a[:, 2] + 180.0], 1)
    b = torch.remainder(b + 180.0, 360.0) - 180.0
    d_a = torch.remainder(a[:, 1] - near + 180.0, 360.0) - 180.0
    d_b = torch.remainder(b[:, 1] - near + 180.0, 360.0) - 180.0
    out = torch.where((d_a.abs() <= d_b.abs())[:, None], a, b)
    # sanity: the angles rebuild the matrices
    err = (euler_to_matrix(torch.deg2rad(out)) - r).abs().max() if r.numel() else 0.0
    if float(err) > 1e-6:
        raise ArithmeticError(f"Euler decomposition failed (error {float(err):.2e}).")
    return out


class RayGeometry:
    """Where the rays of an (n, Y, X) series run in a (Z, Y, X) volume box.

    Parameters
    ----------
    volume_shape : (Z, Y, X)
    detector_shape : (Y, X)
    """

    def __init__(self, volume_shape: tuple[int, int, int], detector_shape: tuple[int, int]) -> None:
        self.volume_shape = tuple(int(v) for v in volume_shape)
        self.detector_shape = tuple(int(v) for v in detector_shape)
        nz, ny, nx = self.volume_shape
        self.diagonal = math.sqrt(nz * nz + ny * ny + nx * nx)
        self._inv_half = (2.0 / nx, 2.0 / ny, 2.0 / nz)

    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        """Voxel offsets (x, y, z) from the centre → normalised coordinates (box = [−1, 1]³)."""
        return p * p.new_tensor(self._inv_half)

    def points(
        self,
        pixels: torch.Tensor,
        m: torch.Tensor,
        delta: torch.Tensor,
        n_s: int,
        jitter: torch.Tensor | None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[torch.Tensor, float]:
        """Normalised sample points (B, S, 3) of the rays of flat pixel indices ``pixels`` (B,).

        ``m, delta`` are :meth:`Pose.effective`; ``jitter`` (B,) in [0, 1) or None
        (midpoints). Returns the points and the step h in voxels. Differentiable in m, δ.
        """
        ny, nx = self.detector_shape
        img = torch.div(pixels, ny * nx, rounding_mode="floor")
        rem = pixels - img * (ny * nx)
        row = torch.div(rem, nx, rounding_mode="floor")
        col = rem - row * nx
        m, delta = m.to(dtype)[img], delta.to(dtype)[img]  # (B, 3, 3), (B, 2)
        u = col.to(dtype) - (nx - 1) / 2 - delta[:, 0]
        v = row.to(dtype) - (ny - 1) / 2 - delta[:, 1]
        h = self.diagonal / n_s
        xi = 0.5 if jitter is None else jitter.to(dtype)[:, None]
        k = torch.arange(n_s, device=pixels.device, dtype=dtype)[None, :]
        w = -self.diagonal / 2 + (k + xi) * h  # (B, S) or (1, S)
        base = u[:, None] * m[:, :, 0] + v[:, None] * m[:, :, 1]  # (B, 3)
        p = base[:, None, :] + w[..., None] * m[:, None, :, 2]
        return self.normalise(p), h


def inside_box(t: torch.Tensor) -> torch.Tensor:
    """Whether normalised points (…, 3) lie in the box [−1, 1]³."""
    return (t.abs() <= 1.0).all(dim=-1)


def line_integrals(field: Field, t: torch.Tensor, h: float) -> torch.Tensor:
    """``Σₖ f(tₖ) h`` over the samples (B, S, 3) of each ray, zero outside the box: (B,).

    Only points inside the box go through ``field``.
    """
    mask = inside_box(t)
    vals = field(t[mask])
    out = torch.zeros(mask.shape, dtype=vals.dtype, device=vals.device)
    out = out.masked_scatter(mask, vals)
    return out.sum(dim=1) * h
