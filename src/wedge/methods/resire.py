"""RESIRE: real-space iterative reconstruction (Pham et al., Sci. Rep. 13, 5624 (2023)).

The method minimises the squared projection error (the paper's Eq. 1)

    ε(O) = ½ Σᵢ ‖Πᵢ O − bᵢ‖²

by gradient descent with the paper's normalised step (Eq. 8 and its pseudocode)

    O ← O − t/(n·N) · Σᵢ Πᵢᵀ (Πᵢ O − bᵢ)

with ``n`` the number of images, ``N`` the thickness of the volume in voxels (its Z size:
the paper's Lipschitz bound L = n·N_z, Eq. 7) and ``t`` the normalised step (2 by default,
the value the paper uses for every result). Πᵢ is a wedge projector: the Fourier-slice
projector (``model="fourier"``, oversampling 3, the paper's FST and RESIRE's default) or a
ray/sub-voxel Radon projector; Πᵢᵀ is that projector's exact adjoint. After each step the
optional proximal step of a regulariser (TV or L1, the route of the paper's remark 3) and
the real-space constraints (positivity, support) are applied.

Extended objects (laterally infinite slabs, e.g. thin films): with
``extended_object=True`` the volume is widened laterally until it holds every voxel that a
ray through the detector crosses within the slab's thickness (RESIRE's ``objectsize``), it is
reconstructed at that size against the detector field of view, and the result is cropped
back to the requested volume. Material outside the field of view then explains the extra
projected mass at high tilt instead of being forced into the cube.

Conventions are wedge's: volume (Z, Y, X), rotation centre (N−1)/2, angles in degrees.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import Geometry
from ..projectors.base import Projector
from ..runner import Callback, Iteration, RunOptions, RunResult, data_weight, run
from .constraints import Constraints
from .registry import register_method

__all__ = [
    "RESIREOptions",
    "RESIRE",
    "resire",
    "tv_prox",
    "l1_prox",
    "extended_volume_shape",
]

_REGULARISERS = ("none", "tv", "l1")


@dataclasses.dataclass
class RESIREOptions:
    """Options of RESIRE.

    Parameters
    ----------
    step : float
        Normalised step ``t`` in (0, 4]; the update is ``t/(n·N)`` times the gradient
        (paper: t = 2).
    positivity : bool
        Clip negative voxels after each update (RESIRE's default, on).
    support : array (Z, Y, X) of 0/1, optional
        Voxels outside it are set to zero after each update.
    regularization : {"none", "tv", "l1"}
        Proximal step applied after the gradient step: isotropic total variation
        (Chambolle's projection) or soft-thresholding.
    reg_weight : float
        λ of the regulariser λ·R(O); the proximal step uses ``s·λ`` with ``s = t/(n·N)``.
    tv_iterations : int
        Inner iterations of the TV proximal operator.
    extended_object : bool
        Reconstruct a laterally extended slab (see the module notes).
    step_thickness : int, optional
        ``N`` of the step normalisation, in voxels; defaults to the volume's Z size. (Not the
        volume's thickness, which is :func:`wedge.reconstruct`'s ``thickness``.)
    acceleration : bool
        Nesterov/FISTA momentum on the same step (Beck & Teboulle 2009; the acceleration
        Ren et al. use for multislice tomography). Off by default: the paper's RESIRE is
        plain gradient descent. Costs one extra volume and tilt series of memory, no
        extra projection (Π of the extrapolated point is the same combination of Π x).
    """

    step: float = 2.0
    positivity: bool = True
    support: Any = None
    regularization: str = "none"
    reg_weight: float = 0.0
    tv_iterations: int = 20
    extended_object: bool = False
    step_thickness: int | None = None
    acceleration: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.step, int | float) and 0 < self.step <= 4):
            raise ValueError(
                f"step must lie in (0, 4] (the normalised step t of t/(n·N)), got {self.step}; "
                "the paper uses 2."
            )
        if self.regularization not in _REGULARISERS:
            raise ValueError(
                f"regularization must be one of {_REGULARISERS}, got {self.regularization!r}."
            )
        if not (math.isfinite(self.reg_weight) and self.reg_weight >= 0):
            raise ValueError(f"reg_weight must be a finite number ≥ 0, got {self.reg_weight}.")
        if self.tv_iterations < 1:
            raise ValueError(f"tv_iterations must be ≥ 1, got {self.tv_iterations}.")
        if self.acceleration and self.step > 1:
            raise ValueError(
                f"acceleration needs step ≤ 1 (FISTA's step 1/L), got {self.step}; "
                "pass step=1.0 with acceleration=True."
            )
        if self.step_thickness is not None and self.step_thickness < 1:
            raise ValueError(
                f"step_thickness must be a positive number of voxels, got {self.step_thickness}."
            )


# ----------------------------------------------------------------------------- proximal steps
def l1_prox(x: torch.Tensor, threshold: float, nonnegative: bool = False) -> torch.Tensor:
    """Soft-thresholding, the proximal operator of ``threshold·‖x‖₁``.

    With ``nonnegative`` it is the prox of ``threshold·‖x‖₁ + ι(x ≥ 0)``: ``max(x − τ, 0)``.
    """
    if nonnegative:
        return (x - threshold).clamp(min=0)
    return torch.sign(x) * (x.abs() - threshold).clamp(min=0)


def tv_prox(f: torch.Tensor, weight: float, iterations: int = 20) -> torch.Tensor:
    """Proximal operator of isotropic total variation: ``argmin_u ½‖u − f‖² + weight·TV(u)``.

    Chambolle's dual projection algorithm (J. Math. Imaging Vis. 20, 89 (2004)) with step
    τ = 1/(2·ndim), forward differences (zero across the last sample of each axis) and the
    matching discrete divergence. Works for any number of dimensions; vectorised in torch.
    """
    if weight <= 0:
        return f
    nd = f.ndim
    tau = 1.0 / (2 * nd)
    p = f.new_zeros((nd, *f.shape))
    out = f
    for _ in range(iterations):
        d = -p.sum(0)
        for ax in range(nd):
            n = f.shape[ax]
            d.narrow(ax, 1, n - 1).add_(p[ax].narrow(ax, 0, n - 1))
        out = f + d
        g = torch.zeros_like(p)
        for ax in range(nd):
            n = f.shape[ax]
            g[ax].narrow(ax, 0, n - 1).copy_(torch.diff(out, dim=ax))
        norm = torch.sqrt((g * g).sum(0, keepdim=True))
        p = (p - tau * g) / (1.0 + (tau / weight) * norm)
    return out


# ----------------------------------------------------------------------------- extended objects
def extended_volume_shape(geometry: Geometry) -> tuple[int, int, int]:
    """Lateral size a slab must have so that every detector ray stays inside it.

    For each image (rotation R), the rays through the four detector corners are followed
    through the slab |z| ≤ (N_z − 1)/2; the widest |x| and |y| they reach set the size
    (RESIRE's ``objectsize``). Sizes keep the parity of the requested volume so the
    (N−1)/2 centres coincide, and never shrink below it.

    Returns
    -------
    (Z, Y', X') with Y' ≥ Y and X' ≥ X.
    """
    nz, ny, nx = geometry.volume_shape
    dy, dx = geometry.detector_shape
    r = geometry.matrices().numpy()  # (n, 3, 3); p = Rᵀ (u, v, w)
    sh = geometry.shifts_array
    hz = (nz - 1) / 2
    us = np.array([-(dx - 1) / 2, (dx - 1) / 2])
    vs = np.array([-(dy - 1) / 2, (dy - 1) / 2])
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    u = uu.reshape(1, -1) - sh[:, :1]  # (n, 4)
    v = vv.reshape(1, -1) - sh[:, 1:]
    # p(w) = u R[0] + v R[1] + w R[2]; solve z(w) = ±hz for w
    base = u[..., None] * r[:, None, 0] + v[..., None] * r[:, None, 1]  # (n, 4, 3)
    d = r[:, None, 2]  # (n, 1, 3) beam direction in volume coordinates
    dz = d[..., 2]
    safe = np.where(np.abs(dz) < 1e-6, 1e-6, dz)
    reach_x, reach_y = [], []
    for zt in (-hz, hz):
        w = (zt - base[..., 2]) / safe
        p = base + w[..., None] * d
        reach_x.append(np.abs(p[..., 0]))
        reach_y.append(np.abs(p[..., 1]))
    ex = float(np.max(reach_x))
    ey = float(np.max(reach_y))

    def size(extent: float, n: int) -> int:
        m = max(n, int(math.ceil(2 * extent + 1)))
        return m + ((m - n) % 2)

    return (nz, size(ey, ny), size(ex, nx))


def _centre_slices(big: Sequence[int], small: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice((b - s) // 2, (b - s) // 2 + s) for b, s in zip(big, small, strict=True))


# ----------------------------------------------------------------------------- the iteration
class RESIRE(Iteration):
    """One RESIRE gradient step per iteration (Eq. 8) with prox and constraints.

    The state holds ``x`` and ``ax`` = Π x, so each iteration costs one forward and one
    adjoint projection and the runner's R-factor is free.
    """

    def __init__(
        self,
        op: Projector,
        data: torch.Tensor,
        weight: torch.Tensor | None,
        options: RESIREOptions,
        support: torch.Tensor | None = None,
    ) -> None:
        super().__init__(op, data, weight)
        n = data.shape[0]
        thickness = options.step_thickness or op.volume_shape[0]
        self.options = options
        self.scale = options.step / (n * thickness)
        self.constraints = Constraints(positivity=options.positivity, support=support)
        self.last_ax: torch.Tensor | None = None

    def _prox(self, x: torch.Tensor) -> torch.Tensor:
        o = self.options
        if o.regularization == "none" or o.reg_weight == 0:
            return x
        w = self.scale * o.reg_weight
        if o.regularization == "l1":
            return l1_prox(x, w, nonnegative=o.positivity)
        return tv_prox(x, w, o.tv_iterations)

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.constraints.apply(x0) if self.constraints.active else x0
        ax = self.op.forward(x)
        self.last_ax = ax
        return {"x": x, "ax": ax}

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        y, ay = state["x"], state["ax"]
        if self.options.acceleration and "x_prev" in state:
            # FISTA extrapolation y = x + β (x − x_prev); Π y by linearity, no projection
            tk = float(state["t"])
            t_next = (1 + math.sqrt(1 + 4 * tk * tk)) / 2
            beta = (tk - 1) / t_next
            y = state["x"] + beta * (state["x"] - state["x_prev"])
            ay = state["ax"] + beta * (state["ax"] - state["ax_prev"])
        res = ay - self.data
        if self.weight is not None:
            res = res * self.weight
        x = y - self.scale * self.op.adjoint(res)
        x = self._prox(x)
        if self.constraints.active:
            x = self.constraints.apply(x)
        ax = self.op.forward(x)
        self.last_ax = ax
        out = {"x": x, "ax": ax}
        if self.options.acceleration:
            t = float(state.get("t", torch.tensor(1.0)))
            out.update(
                x_prev=state["x"],
                ax_prev=state["ax"],
                t=torch.tensor((1 + math.sqrt(1 + 4 * t * t)) / 2 if "x_prev" in state else 1.0),
            )
        return out


@register_method(
    "resire",
    RESIREOptions,
    "RESIRE real-space gradient descent, step t/(n·N) (Pham et al. 2023)",
    default_iterations=100,
    default_model="fourier",
    work_volumes=4,
    work_images=3,
)
def resire(
    op: Projector,
    data: torch.Tensor,
    iterations: int,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: RESIREOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """Reconstruct with RESIRE on projector ``op`` from ``data`` (n, Y, X).

    Parameters
    ----------
    op : Projector
        Forward model; ``model="fourier"`` (FST, oversampling 3) is RESIRE's default.
    data : tensor (n, Y, X)
        Measured projections, line integrals in voxel units.
    iterations : int
    x0 : tensor (Z, Y, X), optional
        Initial volume (zeros by default, as the paper).
    callbacks : sequence
        Called as ``cb(record, x)`` with the requested (cropped) volume.
    options : RESIREOptions
    run : RunOptions

    Returns
    -------
    RunResult
        History records hold the runner's ``r_factor`` (the paper's Eq. 10).
    """
    return _run_resire(op, data, iterations, x0, callbacks, options or RESIREOptions(), run)


def _run_resire(
    op: Projector,
    data: torch.Tensor,
    iterations: int,
    x0: torch.Tensor | None,
    callbacks: Sequence[Callback],
    options: RESIREOptions,
    run_opts: RunOptions | None,
) -> RunResult:
    run_opts = run_opts or RunOptions()
    cons = Constraints(support=options.support)
    cons.check(op.volume_shape)
    if tuple(data.shape) != op.data_shape:
        raise ValueError(
            f"data has shape {tuple(data.shape)}, the projector expects {op.data_shape}."
        )
    dev = op.device
    data = data.to(dev, torch.float32)
    weight = data_weight(data, run_opts)
    support = None
    if options.support is not None:
        support = torch.as_tensor(np.asarray(options.support), device=dev).to(torch.float32)
    shape = op.volume_shape
    x_init = torch.zeros(shape, device=dev) if x0 is None else x0.to(dev, torch.float32)
    if tuple(x_init.shape) != shape:
        raise ValueError(f"x0 has shape {tuple(x_init.shape)} but the volume is {shape}.")

    work_op, crop = op, None
    cbs = list(callbacks)
    if options.extended_object:
        ext = extended_volume_shape(op.geometry)
        work_op = work_op.with_geometry(op.geometry.replace(volume_shape=ext))
        crop = _centre_slices(ext, shape)
        pad = []
        for b, s in zip(reversed(ext), reversed(shape), strict=True):
            pad += [(b - s) // 2, b - s - (b - s) // 2]
        x_init = F.pad(x_init, pad)
        if support is not None:
            support = F.pad(support[None, None], pad, mode="replicate")[0, 0]
        reference = run_opts.reference
        if reference is not None:
            run_opts = dataclasses.replace(run_opts, reference=None)
            cbs.insert(0, _reference_callback(reference, run_opts.reference_every, crop))
        cbs = [_cropping(cb, crop) for cb in cbs]
    alg = RESIRE(work_op, data, weight, options, support)
    result = run(alg, x_init, iterations, run_opts, cbs, name="resire")
    if crop is not None:
        result = dataclasses.replace(result, x=result.x[crop].contiguous())
    return result


def _cropping(cb: Callback, crop: tuple[slice, ...]) -> Callback:
    def wrapped(rec: dict[str, float], x: torch.Tensor) -> bool | None:
        return cb(rec, x[crop])

    return wrapped


def _reference_callback(reference: Any, every: int, crop: tuple[slice, ...]) -> Callback:
    from ..metrics import compute_metrics

    def cb(rec: dict[str, float], x: torch.Tensor) -> bool:
        if int(rec["iteration"]) % every == 0:
            rec.update(compute_metrics(x, reference))
        return False

    return cb


# ----------------------------------------------------------------------------- fast FST operator
