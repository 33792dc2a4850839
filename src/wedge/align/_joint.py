"""Helpers of :func:`wedge.align.fine.joint_refinement`: the gauge, and the damped
Gauss–Newton steps per image (block-diagonal normal equations, finite-difference Jacobian
columns of the fast ``ray`` projector) and on the tilt-axis angle."""

from __future__ import annotations

import torch

from ..parameters import AcquisitionParameters


def _fix_gauge(p: AcquisitionParameters, shift_mean: torch.Tensor, tilt_mean: torch.Tensor) -> None:
    """Put the mean shift and the mean tilt back at their starting values (in place)."""
    with torch.no_grad():
        if p.shifts.requires_grad:
            p.shifts.sub_(p.shifts.mean(0) - shift_mean)
        if p.tilt.requires_grad:
            p.tilt.sub_(p.tilt.mean() - tilt_mean)


_PER_IMAGE = ("shifts", "tilt", "phi", "psi")
#: largest change of any per-image parameter in one Gauss–Newton step (degrees or pixels)
_MAX_STEP = 0.25
_FD_STEP = {"shifts": 0.05, "tilt": 0.05, "phi": 0.05, "psi": 0.05, "tilt_axis": 0.02}


def _columns(forward, p, names) -> tuple[list, list]:
    """Central-difference Jacobian columns of every image in each per-image parameter
    (all images perturbed at once; they do not interact): (columns (n, Y, X), where)."""
    cols, where = [], []
    with torch.no_grad():
        for name in names:
            t = getattr(p, name)
            h = _FD_STEP[name]
            comps = [None] if t.ndim < 2 else list(range(t.shape[1]))
            for c in comps:
                step = torch.zeros_like(t)
                if c is None:
                    step += h
                else:
                    step[:, c] = h
                t.add_(step)
                plus = forward()
                t.sub_(2 * step)
                minus = forward()
                t.add_(step)
                cols.append((plus - minus) / (2 * h))
                where.append((name, c))
    return cols, where


def _gauss_newton_step(forward, p, b, names, damping) -> torch.Tensor:
    """One damped Gauss–Newton (Levenberg–Marquardt) step on the per-image parameters.

    With the volume fixed the misfit is a sum of independent per-image terms, so the normal
    matrix is block diagonal: one k × k system per image (k = number of per-image
    parameters). A step is kept for an image only where it lowers that image's misfit;
    the image's damping then shrinks by 3, otherwise grows by 10. Returns the per-image
    misfits after the step (n,), float64; ``damping`` (n,) is updated in place.
    """
    with torch.no_grad():
        r = (forward() - b).flatten(1)
        before = (r * r).sum(1)
        cols, where = _columns(forward, p, names)
        jac = torch.stack([c.flatten(1) for c in cols], 2)  # (n, m, k)
        hess = jac.transpose(1, 2) @ jac
        grad = (jac.transpose(1, 2) @ r[:, :, None])[..., 0]
        diag = torch.diagonal(hess, dim1=1, dim2=2)
        lm = hess + torch.diag_embed(damping[:, None] * diag + 1e-12)
        delta = -torch.linalg.solve(lm, grad)
        # trust region: no parameter moves by more than _MAX_STEP (deg or px) in one step
        limit = torch.tensor([_MAX_STEP for _ in where], dtype=delta.dtype, device=delta.device)
        delta = delta / (delta.abs() / limit).amax(1, keepdim=True).clamp(min=1.0)
        old = {name: getattr(p, name).clone() for name in names}
        for j, (name, c) in enumerate(where):
            t = getattr(p, name)
            if c is None:
                t.add_(delta[:, j].to(t.dtype))
            else:
                t[:, c] += delta[:, j].to(t.dtype)
        r2 = (forward() - b).flatten(1)
        after = (r2 * r2).sum(1)
        keep = after < before
        for name in names:
            t = getattr(p, name)
            mask = keep if t.ndim == 1 else keep[:, None]
            t.copy_(torch.where(mask, t, old[name]))
        damping.copy_(torch.where(keep, damping / 3, damping * 10).clamp(1e-6, 1e6))
        return torch.where(keep, after, before)


def _geometry_forward(geometry, x: torch.Tensor, p: AcquisitionParameters, mask=None):
    """A function projecting ``x`` with the ``ray`` projector of ``geometry`` at the current
    values of ``p`` (float64 images, times ``mask`` (Y, X) when given); the fast
    single-axis projector when φ = ψ = 0 and α = 0."""
    from ..projectors import make_projector

    def forward() -> torch.Tensor:
        geom = geometry.replace(
            euler=p.euler().detach().cpu().numpy(),
            shifts=p.shifts.detach().cpu().numpy(),
            tilt_axis_angle=float(p.tilt_axis.detach()),
        )
        with torch.no_grad():
            out = make_projector(geom, "ray").forward(x).double()
        return out if mask is None else out * mask

    return forward


def _axis_step(forward, p, b, damping: list) -> None:
    """One damped Gauss–Newton step on the tilt-axis angle α (one for the series), kept only
    where it lowers the total misfit; ``damping`` ([float]) is updated in place."""
    with torch.no_grad():
        r = forward() - b
        before = float((r * r).sum())
        cols, _ = _columns(forward, p, ("tilt_axis",))
        c = cols[0]
        cc = float((c * c).sum())
        if cc == 0:
            return
        delta = -float((c * r).sum()) / (cc * (1 + damping[0]))
        p.tilt_axis.add_(delta)
        r2 = forward() - b
        if float((r2 * r2).sum()) < before:
            damping[0] = max(damping[0] / 3, 1e-6)
        else:
            p.tilt_axis.sub_(delta)
            damping[0] = min(damping[0] * 10, 1e6)
