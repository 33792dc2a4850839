"""Batched 3D Gaussian fitting of atom sites (Levenberg–Marquardt in torch).

Internal to :mod:`wedge.atoms.tracing`: every site's Gaussian + background model is fitted
to the voxels around it in one batched solve, never a Python loop over atoms.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .tracing import TraceOptions

_MIN_SIGMA = 0.2  # voxels: lower clamp of fitted widths (below any real atom)


def _offsets(radius: int, device: torch.device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device)
    return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), dim=-1).reshape(-1, 3)


def _gauss(theta: torch.Tensor, coords: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-height Gaussian g (B, P) and (c - μ)/σ² (B, P, 3) at ``coords`` (P, 3)."""
    d = coords - theta[:, None, 1:4]
    inv_var = torch.exp(-2.0 * theta[:, None, 4:7])
    dv = d * inv_var
    return torch.exp(-0.5 * (d * dv).sum(-1)), dv


def _jacobian(
    t: torch.Tensor, g: torch.Tensor, dv: torch.Tensor, coords: torch.Tensor, opts: TraceOptions
) -> torch.Tensor:
    """∂model/∂(free parameters), (B, P, k): A, μ (3), log σ (3 or 1), b (if fitted)."""
    ag = t[:, None, 0:1] * g[..., None]
    dls = ag * dv * (coords - t[:, None, 1:4])  # ∂/∂ log σ_k = A g (c_k - μ_k)² / σ_k²
    cols = [g[..., None], ag * dv, dls if opts.anisotropic else dls.sum(-1, keepdim=True)]
    if opts.fit_background:
        cols.append(torch.ones_like(g)[..., None])
    return torch.cat(cols, dim=-1)


def _lm_fit(
    theta: torch.Tensor,
    data: torch.Tensor,
    weight: torch.Tensor,
    coords: torch.Tensor,
    opts: TraceOptions,
    max_log_sigma: float,
) -> torch.Tensor:
    """Batched Levenberg-Marquardt fit of ``b + A exp(-½ Σ_k (c_k - μ_k)² / σ_k²)``.

    ``theta`` (B, 8) start values (A, μz, μy, μx, log σz, log σy, log σx, b) with μ in the
    local box coordinates ``coords`` (P, 3); ``data``, ``weight`` (B, P). Each site has its own
    damping; a step is kept only where it lowers that site's weighted squared residual.
    """

    def residual(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g, dv = _gauss(t, coords)
        return t[:, None, 0] * g + t[:, None, 7] - data, g, dv

    def apply(t: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        new = t.clone()
        new[:, 0:4] += step[:, 0:4]
        new[:, 4:7] += step[:, 4:7] if opts.anisotropic else step[:, 4:5]
        new[:, 4:7] = new[:, 4:7].clamp(math.log(_MIN_SIGMA), max_log_sigma)
        if opts.fit_background:
            new[:, 7] += step[:, -1]
        return new

    t = theta
    r, g, dv = residual(t)
    cost = (weight * r * r).sum(1)
    lam = torch.full_like(cost, 1e-2)
    for _ in range(opts.lm_iterations):
        jac = _jacobian(t, g, dv, coords, opts)
        jw = jac * weight[..., None]
        h = torch.bmm(jw.transpose(1, 2), jac)
        grad = torch.bmm(jw.transpose(1, 2), r[..., None])
        diag = torch.diagonal(h, dim1=1, dim2=2)
        damped = h + torch.diag_embed(lam[:, None] * diag + 1e-12)
        step = torch.linalg.solve(damped, -grad)[..., 0]
        trial = apply(t, step)
        r_t, g_t, dv_t = residual(trial)
        cost_t = (weight * r_t * r_t).sum(1)
        ok = torch.isfinite(cost_t) & (cost_t < cost)
        t = torch.where(ok[:, None], trial, t)
        r = torch.where(ok[:, None], r_t, r)
        g = torch.where(ok[:, None], g_t, g)
        dv = torch.where(ok[:, None, None], dv_t, dv)
        cost = torch.where(ok, cost_t, cost)
        lam = torch.where(ok, lam / 3.0, lam * 3.0).clamp(1e-7, 1e7)
        if float(step[:, 1:4].abs().max()) < 1e-4:  # every centre has settled
            break
    return t


class _Grid:
    """The volume padded by ``pad`` voxels, flattened, with gather/scatter by site boxes."""

    def __init__(self, volume: np.ndarray, pad: int, device: torch.device) -> None:
        self.shape = volume.shape
        self.pad = pad
        self.device = device
        v = torch.as_tensor(volume, dtype=torch.float32, device=device)
        self.padded_shape = tuple(s + 2 * pad for s in self.shape)
        self.data = torch.nn.functional.pad(v[None, None], (pad,) * 6)[0, 0].reshape(-1)
        inside = torch.ones(self.shape, dtype=torch.float32, device=device)
        self.inside = torch.nn.functional.pad(inside[None, None], (pad,) * 6)[0, 0].reshape(-1)
        ny, nx = self.padded_shape[1:]
        self.strides = torch.tensor([ny * nx, nx, 1], device=device)

    def flat_index(self, centres: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Flat padded indices (B, P) of the box ``centres + offsets`` (integer (z, y, x))."""
        idx = centres[:, None, :] + offsets[None] + self.pad
        return (idx * self.strides).sum(-1)

    def render(self, theta: np.ndarray, radius: int, batch: int) -> torch.Tensor:
        """Sum of the sites' Gaussians (no background) on the padded grid, flat."""
        out = torch.zeros_like(self.data)
        offs = _offsets(radius, self.device)
        for s in range(0, theta.shape[0], batch):
            t, c = _localise(theta[s : s + batch], self.device)
            g, _ = _gauss(t, offs.to(t.dtype))
            out.index_add_(0, self.flat_index(c, offs).reshape(-1), (t[:, None, 0] * g).reshape(-1))
        return out


def _localise(theta: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 parameters with centres relative to the nearest voxel, and that voxel (int)."""
    c = np.round(theta[:, 1:4])
    local = theta.copy()
    local[:, 1:4] -= c
    return (
        torch.as_tensor(local, dtype=torch.float32, device=device),
        torch.as_tensor(c, dtype=torch.int64, device=device),
    )


def _fit_sites(
    grid: _Grid,
    model: torch.Tensor | None,
    theta: np.ndarray,
    radius: int,
    opts: TraceOptions,
) -> np.ndarray:
    """Refit every site (float64 (n, 8), index units) on the volume minus the other sites' model.

    All sites are refitted against the same model (a Jacobi sweep); ``model`` is the rendered
    sum of all sites (each within its render box, which contains the fit box) or None.
    """
    offs = _offsets(radius, grid.device)
    coords = offs.to(torch.float32)
    out = np.empty_like(theta)
    for s in range(0, theta.shape[0], opts.batch_size):
        t, c = _localise(theta[s : s + opts.batch_size], grid.device)
        idx = grid.flat_index(c, offs)
        data = grid.data[idx]
        if model is not None:
            g, _ = _gauss(t, coords)
            data = data - model[idx] + t[:, None, 0] * g
        if not opts.fit_background:
            t[:, 7] = 0.0
        fit = _lm_fit(t, data, grid.inside[idx], coords, opts, math.log(2.0 * radius + 1.0))
        fit = fit.double().cpu().numpy()
        # A centre that left its box is a failed fit (no peak there): mark it for removal.
        lost = np.abs(fit[:, 1:4]).max(1) > radius
        fit[:, 1:4] += c.cpu().numpy()
        fit[lost] = np.nan
        out[s : s + opts.batch_size] = fit
    return out


def _initial_theta(
    sites: np.ndarray, volume: np.ndarray, sigma: float, opts: TraceOptions
) -> np.ndarray:
    """Start values: centre at the voxel, height from the volume there, width ``sigma``."""
    ii = np.round(sites).astype(np.int64)
    for k in range(3):
        np.clip(ii[:, k], 0, volume.shape[k] - 1, out=ii[:, k])
    b0 = float(np.percentile(volume, 10)) if opts.fit_background else 0.0
    height = volume[ii[:, 0], ii[:, 1], ii[:, 2]] - b0
    theta = np.zeros((len(sites), 8))
    theta[:, 0] = np.maximum(height, 1e-6 * max(float(np.abs(volume).max()), 1e-30))
    theta[:, 1:4] = sites
    theta[:, 4:7] = math.log(sigma)
    theta[:, 7] = b0
    return theta


# ----------------------------------------------------------------------------- pruning
