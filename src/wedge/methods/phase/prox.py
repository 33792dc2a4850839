"""Proximal operators of Ren et al. (2020) §2.5 / Algorithm 3 line 12.

* :func:`tv_prox_fgp`: isotropic total variation by Beck & Teboulle's fast gradient
  projection (FGP; IEEE Trans. Image Process. 18, 2419 (2009), the paper's ref. 67),
  optionally with the positivity constraint inside the prox (their constrained
  denoising problem, P_C = projection onto V ≥ 0);
* :func:`soft_threshold`: the prox of λ‖V‖₁ (LASSO), optionally with positivity.

Volumes are (Z, Y, X) tensors in V; the weight λ is in V (the prox solves
argmin_u ½‖u − f‖² + λ R(u) with R(u) = Σ|∇u| or Σ|u| over voxels).
"""

from __future__ import annotations

import torch

__all__ = ["tv_prox_fgp", "soft_threshold", "forward_difference", "forward_difference_adjoint"]


def forward_difference(x: torch.Tensor) -> torch.Tensor:
    """D x: forward differences along every axis, (ndim, *shape), 0 across the last sample."""
    g = x.new_zeros((x.ndim, *x.shape))
    for a in range(x.ndim):
        g[a].narrow(a, 0, x.shape[a] - 1).copy_(torch.diff(x, dim=a))
    return g


def forward_difference_adjoint(p: torch.Tensor) -> torch.Tensor:
    """Dᵀ p for p of shape (ndim, *shape) (= −div p): the exact adjoint of
    :func:`forward_difference`."""
    shape = p.shape[1:]
    out = p.new_zeros(shape)
    for a in range(len(shape)):
        n = shape[a]
        pa = p[a].narrow(a, 0, n - 1)
        out.narrow(a, 0, n - 1).sub_(pa)
        out.narrow(a, 1, n - 1).add_(pa)
    return out


def tv_prox_fgp(
    f: torch.Tensor, weight: float, iterations: int = 20, nonnegative: bool = False
) -> torch.Tensor:
    """argmin_u ½‖u − f‖² + weight·TV(u) (+ the constraint u ≥ 0 when ``nonnegative``).

    Beck & Teboulle's FGP on the dual: with p (ndim, *shape), |p_i| ≤ 1 per voxel,
    u(p) = P_C(f − weight·Dᵀp), p ← P_{|·|≤1}(r + D u(r) / (4·ndim·weight)) (4·ndim bounds
    ‖D‖²), Nesterov extrapolation of p with t_{k+1} = (1 + √(1 + 4t_k²))/2. Isotropic TV
    Σ_i ‖(Du)_i‖₂, forward differences (zero across the last sample of each axis).
    """
    if weight <= 0:
        return f.clamp(min=0) if nonnegative else f

    def primal(p: torch.Tensor) -> torch.Tensor:
        u = f - weight * forward_difference_adjoint(p)
        return u.clamp(min=0) if nonnegative else u

    step = 1.0 / (4 * f.ndim * weight)
    p = f.new_zeros((f.ndim, *f.shape))
    r = p
    t = 1.0
    for _ in range(iterations):
        q = r + step * forward_difference(primal(r))
        norm = torch.sqrt((q * q).sum(0, keepdim=True)).clamp(min=1.0)
        p_new = q / norm
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        r = p_new + ((t - 1.0) / t_new) * (p_new - p)
        p, t = p_new, t_new
    return primal(p)


def soft_threshold(x: torch.Tensor, threshold: float, nonnegative: bool = False) -> torch.Tensor:
    """prox of threshold·‖x‖₁: sign(x)·max(|x| − threshold, 0); with ``nonnegative`` the prox
    of threshold·‖x‖₁ + ι(x ≥ 0): max(x − threshold, 0)."""
    if nonnegative:
        return (x - threshold).clamp(min=0)
    return torch.sign(x) * (x.abs() - threshold).clamp(min=0)
