"""Algebraic reconstruction: ``art`` (Kaczmarz), ``sart`` and ``sirt``.

All three solve ``A x ≈ b`` for the (Z, Y, X) volume ``x`` from the (n, Y, X) tilt series
``b`` (line integrals in voxel units), with ``A`` the projector and ``Aᵀ`` its exact adjoint.
Notation: ``R = diag(1 / A·1)`` (inverse row sums), ``C = diag(1 / Aᵀ·1)`` (inverse column
sums), zeros where a sum is zero; ``λ`` the relaxation; ``P`` the constraints
(positivity, bounds, support) applied after every update; ``W`` the 0/1 hold-out weight.

``sirt`` (all images at once; ASTRA's "SIRT" definition, Gregor & Benson 2008, Eq. 2)
    ``x ← P(x + λ C Aᵀ W R (b − A x))``
``sart`` (one image at a time; Andersen & Kak 1984, per image rather than per ray)
    ``x ← P(x + λ C_i A_iᵀ W_i R_i (b_i − A_i x))``, ``C_i``, ``R_i`` sums of ``A_i`` only.
``art`` (Kaczmarz 1937)
    ``block="image"``: block Kaczmarz, the rays of one image updated together,
    ``x ← P(x + λ A_iᵀ W_i D_i (b_i − A_i x))``. On the fast path
    ``D_i = diag(1/‖a_r‖²) / ‖diag(1/‖a_r‖²)^½ A_i‖₂²`` (Kaczmarz's row normalisation,
    divided by the block's squared norm from a power iteration: the rays of one image
    overlap through interpolation, and this keeps every λ in (0, 2) convergent). On the
    general path ``D_i = R_i / max(A_iᵀ 1)`` (row sums; the Schur bound gives the same
    guarantee without a power iteration per image).
    ``block="ray"``: true Kaczmarz, one ray after another,
    ``x ← x + λ w_r (b_r − a_r·x) / ‖a_r‖² a_r``. In wedge a "ray" is one detector
    column of one image on the single-axis fast path: for tilts about Y the rays of one
    column at different Y cross disjoint voxel rows, so updating them together *is*
    sequential Kaczmarz, vectorised over Y. It costs one Python-level step per
    (image, detector column), about 20–50 µs plus the ray's arithmetic, so it suits small
    problems (and matches TomoPy's ``art``); it needs the single-axis fast path without
    Y shifts. Constraints are applied after each image.

One iteration is one sweep over all images. Image order (``art``, ``sart``):
``"sequential"`` (as stored), ``"random"`` (a fresh permutation per iteration, seeded
by ``run.seed`` and the iteration number so a resumed run repeats it) or ``"golden"``
(images sorted by angle, visited in the order of ``frac(k·0.618…)``, which puts
consecutive updates far apart in angle).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch

from ..projectors.base import Projector
from ..projectors.single_axis import SparseProjector, csr_tensor
from ..runner import Callback, Iteration, RunOptions, RunResult, data_weight
from ..runner import run as run_iterations
from .constraints import Constraints
from .registry import register_method

__all__ = [
    "IterativeOptions",
    "SIRTOptions",
    "SARTOptions",
    "ARTOptions",
    "SIRT",
    "SART",
    "ART",
    "sirt",
    "sart",
    "art",
    "image_order",
    "ORDERS",
]

Order = Literal["sequential", "random", "golden"]
#: image orders of the sequential methods
ORDERS: tuple[str, ...] = get_args(Order)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: per-image column sums of the general path are cached up to this many bytes
_COLSUM_CACHE_BYTES = 256 * 2**20


@dataclasses.dataclass
class IterativeOptions:
    """Options shared by the iterative methods.

    Parameters
    ----------
    relaxation : float
        λ in (0, 2).
    positivity : bool
        Clip negative voxels after every update.
    lower, upper : float or None
        Bounds on every voxel.
    support : array (Z, Y, X) or None
        0/1 mask; voxels outside are held at zero.
    """

    relaxation: float = 1.0
    positivity: bool = False
    lower: float | None = None
    upper: float | None = None
    support: Any = None

    def __post_init__(self) -> None:
        if not (isinstance(self.relaxation, int | float) and 0.0 < self.relaxation < 2.0):
            raise ValueError(
                f"relaxation must be a number in (0, 2), got {self.relaxation!r}; "
                "1 is the usual choice."
            )
        self.constraints()  # checks the bounds

    def constraints(self) -> Constraints:
        return Constraints(self.positivity, self.lower, self.upper, self.support)


@dataclasses.dataclass
class SIRTOptions(IterativeOptions):
    """Options of ``sirt`` (see :class:`IterativeOptions`)."""


@dataclasses.dataclass
class SARTOptions(IterativeOptions):
    """Options of ``sart``: those of :class:`IterativeOptions` plus the image ``order``."""

    order: str = "sequential"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.order not in ORDERS:
            raise ValueError(f"unknown order {self.order!r}; known orders: {', '.join(ORDERS)}.")


@dataclasses.dataclass
class ARTOptions(SARTOptions):
    """Options of ``art``: those of :class:`SARTOptions` plus ``block`` ("image" or "ray")."""

    block: str = "image"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block not in ("image", "ray"):
            raise ValueError(f"block must be 'image' or 'ray', got {self.block!r}.")


def image_order(angles_deg: np.ndarray, order: str, k: int, seed: int) -> np.ndarray:
    """The image indices visited in sweep ``k`` (0-based) for ``order``."""
    n = angles_deg.size
    if order == "sequential":
        return np.arange(n)
    if order == "random":
        return np.random.default_rng([seed, k]).permutation(n)
    by_angle = np.argsort(angles_deg, kind="stable")
    return by_angle[np.argsort(np.mod(np.arange(n) * _GOLDEN, 1.0), kind="stable")]


def _inverse(s: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """1/s where s > eps, else 0 (ASTRA's guard for rays/voxels that see nothing)."""
    out = s.reciprocal()
    out[s <= eps] = 0.0
    return out


def _squeeze_y(t: torch.Tensor) -> torch.Tensor:
    """``t`` as (…, 1, X) when it is constant along axis 1 (Y), else ``t`` itself.

    Row and column sums of the single-axis projector do not depend on Y; storing one Y
    row saves a volume (and a tilt series) of memory, and broadcasting restores the rest.
    """
    first = t[:, :1, :]
    return first.clone() if torch.equal(t, first.expand_as(t)) else t


def _column_sums(op: Projector) -> torch.Tensor:
    """``Aᵀ 1`` as (Z, 1, X) when constant along Y (single-axis), else (Z, Y, X).

    Built one Y slab at a time, so the single-axis case never holds a full volume.
    """
    ones = torch.ones((), device=op.device).expand(op.data_shape)
    first: torch.Tensor | None = None
    full: torch.Tensor | None = None
    for y0, y1, block in op.adjoint_chunks(ones):
        if first is None:
            first = block[:, :1, :].clone()
        if full is None and torch.equal(block, first.expand_as(block)):
            continue
        if full is None:
            full = first.expand(op.volume_shape).clone()
        full[:, y0:y1, :] = block
    assert first is not None
    return first if full is None else full


def _constrain_(x: torch.Tensor, cons: Constraints, support: torch.Tensor | None) -> None:
    """Apply ``cons`` to a freshly made ``x`` in place (no extra volume-sized temporaries)."""
    lo = cons.lower
    if cons.positivity:
        lo = 0.0 if lo is None else max(lo, 0.0)
    if lo is not None or cons.upper is not None:
        x.clamp_(min=lo, max=cons.upper)
    if support is not None:
        x.mul_(support)


def _prepare(
    op: Projector,
    data: torch.Tensor,
    iterations: int,
    x0: torch.Tensor | None,
    options: Any,
    run: RunOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, Constraints]:
    """Validate everything before work: iterations, shapes, support; make x0 and W.

    ``options`` is any options object with a ``constraints()`` method.
    """
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}.")
    if iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations}.")
    if tuple(data.shape) != op.data_shape:
        raise ValueError(
            f"the data have shape {tuple(data.shape)} but the geometry expects {op.data_shape}."
        )
    cons = options.constraints()
    cons.check(op.volume_shape)
    data = data.to(op.device, torch.float32)
    if x0 is None:  # a zero-stride view: no volume of memory for a zero start
        x0 = torch.zeros((), device=op.device).expand(op.volume_shape)
    else:
        x0 = torch.as_tensor(x0, dtype=torch.float32).to(op.device)
        if tuple(x0.shape) != op.volume_shape:
            raise ValueError(f"x0 has shape {tuple(x0.shape)} but the volume is {op.volume_shape}.")
    return data, x0, data_weight(data, run), cons


# ---------------------------------------------------------------------------------- SIRT
class SIRT(Iteration):
    """``x ← P(x + λ C Aᵀ W R (b − A x))``; the state caches ``ax = A x``."""

    def __init__(
        self,
        op: Projector,
        data: torch.Tensor,
        weight: torch.Tensor | None,
        relaxation: float = 1.0,
        constraints: Constraints | None = None,
    ) -> None:
        super().__init__(op, data, weight)
        self.relaxation = float(relaxation)
        self.constraints = constraints or Constraints()
        self.support = None
        if self.constraints.support is not None:
            self.support = torch.as_tensor(self.constraints.support, device=op.device).float()
        ones = torch.ones((), device=op.device)
        if not isinstance(op, SparseProjector):  # the sparse path reads expanded views
            ones = ones.expand(op.volume_shape).contiguous()
        self.r = _squeeze_y(_inverse(op.forward(ones.expand(op.volume_shape))))
        if weight is not None:
            self.r = self.r * weight
        self.c = _inverse(_column_sums(op))

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        # SIRT updates its own copy in place, slab by slab (never the caller's x0)
        x = x0.contiguous().clone() if x0.stride() != (0, 0, 0) else torch.zeros_like(x0)
        if self.constraints.active:
            _constrain_(x, self.constraints, self.support)
        return {"x": x, "ax": self.op.forward(x)}

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        """One SIRT update, back-projected and applied one Y slab at a time.

        Folding ``C Aᵀ R (b − A x)`` into ``x`` slab by slab keeps a single volume in
        memory; the state carries ``step_norm`` = ‖x_new − x_old‖ for the runner.
        """
        x = state["x"]
        resid = self.r * (self.data - state["ax"])
        sq = x.new_zeros(())
        for y0, y1, block in self.op.adjoint_chunks(resid):
            c = self.c if self.c.shape[1] == 1 else self.c[:, y0:y1, :]
            old = x[:, y0:y1, :]
            new = old + self.relaxation * c * block
            if self.constraints.active:
                sup = None if self.support is None else self.support[:, y0:y1, :]
                _constrain_(new, self.constraints, sup)
            sq += torch.sum((new - old) ** 2)
            old.copy_(new)
        return {"x": x, "ax": self.op.forward(x), "step_norm": sq.sqrt()}


# --------------------------------------------------------------- per-image operators
def _transpose_csr(a: torch.Tensor) -> torch.Tensor:
    crow, col, val = a.crow_indices(), a.col_indices(), a.values()
    rows = torch.repeat_interleave(
        torch.arange(a.shape[0], device=val.device), (crow[1:] - crow[:-1]).long()
    )
    coo = torch.sparse_coo_tensor(
        torch.stack([col.long(), rows]), val, (a.shape[1], a.shape[0]), check_invariants=False
    ).coalesce()
    idx = coo.indices()
    counts = torch.bincount(idx[0], minlength=a.shape[1])
    crow_t = torch.zeros(a.shape[1] + 1, dtype=torch.int64, device=val.device)
    crow_t[1:] = torch.cumsum(counts, 0)
    # int32 indices like the projector's own matrices (int64 CSR products are much slower)
    return csr_tensor(crow_t.int(), idx[1].int(), coo.values(), (a.shape[1], a.shape[0]))


def _fast_path(op: Projector) -> bool:
    """Whether ``op`` is a sparse single-axis projector without Y resampling."""
    return isinstance(op, SparseProjector) and op.ymap.identity


class _Blocks:
    """Per-image forward/adjoint of ``op`` in a work layout, built once per run.

    Fast path (sparse single-axis projector, no Y resampling): the volume is worked on as
    the (Z·X, Y) matrix the projector multiplies and image ``i`` as (X_det, Y); ``A_i``
    are row slices of the projector's CSR matrix. Otherwise the work layout is the native
    one and ``A_i`` is the projector of ``op.geometry[i]`` (same model and options).
    """

    def __init__(self, op: Projector) -> None:
        self.op = op
        nz, ny, nx = op.volume_shape
        n, nvy, nu = op.data_shape
        self.sparse = _fast_path(op)
        if self.sparse:
            a = op.a
            crow, col, val = a.crow_indices(), a.col_indices(), a.values()
            self.a_i, self.at_i = [], []
            for i in range(n):
                lo, hi = i * nu, (i + 1) * nu + 1
                c_i = crow[lo:hi] - crow[lo]
                s, e = int(crow[lo]), int(crow[hi - 1])
                blk = csr_tensor(c_i, col[s:e], val[s:e], (nu, nz * nx))
                self.a_i.append(blk)
                self.at_i.append(_transpose_csr(blk))
        else:
            self.ops = [op.with_geometry(op.geometry[i]) for i in range(n)]

    # layouts ---------------------------------------------------------------------
    def to_work(self, x: torch.Tensor) -> torch.Tensor:
        if not self.sparse:
            return x.clone()
        nz, ny, nx = x.shape
        # always a fresh tensor: sweeps update it in place, the caller's x must not change
        return x.permute(0, 2, 1).reshape(nz * nx, ny).clone()

    def from_work(self, xw: torch.Tensor) -> torch.Tensor:
        if not self.sparse:
            return xw
        nz, ny, nx = self.op.volume_shape
        return xw.reshape(nz, nx, ny).permute(0, 2, 1).contiguous()

    def images_to_work(self, y: torch.Tensor) -> torch.Tensor:
        return y.permute(0, 2, 1).contiguous() if self.sparse else y

    # operators in the work layout ----------------------------------------------------
    def forward(self, i: int, xw: torch.Tensor) -> torch.Tensor:
        if self.sparse:
            return torch.sparse.mm(self.a_i[i], xw)
        return self.ops[i].forward(xw)[0]

    def adjoint(self, i: int, yw: torch.Tensor) -> torch.Tensor:
        if self.sparse:
            return torch.sparse.mm(self.at_i[i], yw)
        return self.ops[i].adjoint(yw[None])

    def rows(self, i: int) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Fast path: image ``i``'s CSR rows as (row pointers, int64 columns, values)."""
        blk = self.a_i[i]
        return blk.crow_indices().tolist(), blk.col_indices().long(), blk.values()

    def row_norms(self, i: int) -> torch.Tensor:
        """Fast path: ``‖a_r‖²`` of every ray (detector column) of image ``i``, shape (X_det, 1)."""
        blk = self.a_i[i]
        sq = csr_tensor(blk.crow_indices(), blk.col_indices(), blk.values() ** 2, blk.shape)
        return torch.sparse.mm(sq, self.ones_volume())

    def ones_volume(self) -> torch.Tensor:
        """A work-layout ones volume (one Y column on the fast path: sums are Y-invariant)."""
        if self.sparse:
            return torch.ones((self.at_i[0].shape[0], 1), device=self.op.device)
        return torch.ones(self.op.volume_shape, device=self.op.device)

    def ones_image(self) -> torch.Tensor:
        if self.sparse:
            return torch.ones((self.a_i[0].shape[0], 1), device=self.op.device)
        return torch.ones(self.op.data_shape[1:], device=self.op.device)


def _support_work(blocks: _Blocks, cons: Constraints) -> Constraints:
    """The constraints with the support mask moved to the work layout."""
    if cons.support is None:
        return cons
    s = torch.as_tensor(cons.support, device=blocks.op.device).to(torch.float32)
    return dataclasses.replace(cons, support=blocks.to_work(s))


class _Sequential(Iteration):
    """Shared sweep machinery of SART and ART (one sweep over the images per step)."""

    def __init__(
        self,
        op: Projector,
        data: torch.Tensor,
        weight: torch.Tensor | None,
        relaxation: float = 1.0,
        constraints: Constraints | None = None,
        order: str = "sequential",
        seed: int = 0,
    ) -> None:
        super().__init__(op, data, weight)
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; known orders: {', '.join(ORDERS)}.")
        self.relaxation = float(relaxation)
        self.order, self.seed = order, int(seed)
        self.blocks = _Blocks(op)
        self.constraints = _support_work(self.blocks, constraints or Constraints())
        self.bw = self.blocks.images_to_work(data)
        self.ww = None if weight is None else self.blocks.images_to_work(weight)

    def _project(self, xw: torch.Tensor) -> torch.Tensor:
        return self.constraints.apply(xw) if self.constraints.active else xw

    def init(self, x0: torch.Tensor) -> dict[str, torch.Tensor]:
        xw = self._project(self.blocks.to_work(x0))
        return {"x": self.blocks.from_work(xw).clone()}

    def update(self, i: int, xw: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, state: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        xw = self.blocks.to_work(state["x"])
        for i in image_order(self.op.geometry.angles, self.order, k, self.seed):
            xw = self._project(self.update(int(i), xw))
        return {"x": self.blocks.from_work(xw)}


class SART(_Sequential):
    """``x ← P(x + λ C_i A_iᵀ W_i R_i (b_i − A_i x))`` image after image."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bl, n = self.blocks, self.op.data_shape[0]
        ones_v, ones_i = bl.ones_volume(), bl.ones_image()
        self.r = [_inverse(bl.forward(i, ones_v)) for i in range(n)]
        vol_bytes = 4 * math.prod(self.op.volume_shape)
        self.c: list[torch.Tensor] | None = None
        if bl.sparse or n * vol_bytes <= _COLSUM_CACHE_BYTES:
            self.c = [_inverse(bl.adjoint(i, ones_i)) for i in range(n)]

    def update(self, i: int, xw: torch.Tensor) -> torch.Tensor:
        bl = self.blocks
        res = self.r[i] * (self.bw[i] - bl.forward(i, xw))
        if self.ww is not None:
            res = res * self.ww[i]
        c = self.c[i] if self.c is not None else _inverse(bl.adjoint(i, bl.ones_image()))
        return xw + self.relaxation * c * bl.adjoint(i, res)


class ART(_Sequential):
    """Kaczmarz per image block or per ray (see the module notes)."""

    def __init__(self, *args: Any, block: str = "image", **kwargs: Any) -> None:
        if block == "ray" and not _fast_path(args[0] if args else kwargs["op"]):
            raise ValueError(
                "art with block='ray' needs the single-axis fast path (tilts about Y, model "
                "'ray' or 'voxel', no Y shifts and a detector as tall as the volume); "
                "use block='image' otherwise."
            )
        super().__init__(*args, **kwargs)
        self.block = block
        bl = self.blocks
        n = self.op.data_shape[0]
        if bl.sparse:  # exact ‖a_r‖² from the CSR values
            self.d = [_inverse(bl.row_norms(i)) for i in range(n)]
            self.ray_rows = [bl.rows(i) for i in range(n)] if block == "ray" else []
            if block == "image":
                self.d = [d / self._block_norm(i, d) for i, d in enumerate(self.d)]
        else:  # row sums, scaled by the largest column sum (Schur bound)
            ones_v, ones_i = bl.ones_volume(), bl.ones_image()
            self.d = []
            for i in range(n):
                colmax = float(bl.adjoint(i, ones_i).max()) or 1.0
                self.d.append(_inverse(bl.forward(i, ones_v)) / colmax)

    def _block_norm(self, i: int, d: torch.Tensor, iterations: int = 12) -> float:
        """‖D_i^½ A_i‖₂² by power iteration (≥ 1; 1 when the rays are orthogonal)."""
        bl = self.blocks
        g = torch.Generator().manual_seed(i)
        v = torch.rand((bl.at_i[i].shape[0], 1), generator=g).to(d.device)
        s = 1.0
        for _ in range(iterations):
            v = bl.adjoint(i, d * bl.forward(i, v))
            s = float(torch.linalg.vector_norm(v))
            if s == 0:
                return 1.0
            v = v / s
        return max(1.0, 1.02 * s)

    def update(self, i: int, xw: torch.Tensor) -> torch.Tensor:
        if self.block == "ray":
            return self._update_rays(i, xw)
        bl = self.blocks
        res = self.d[i] * (self.bw[i] - bl.forward(i, xw))
        if self.ww is not None:
            res = res * self.ww[i]
        return xw + self.relaxation * bl.adjoint(i, res)

    def _update_rays(self, i: int, xw: torch.Tensor) -> torch.Tensor:
        crow, col, val = self.ray_rows[i]
        b, d = self.bw[i], self.d[i]
        w = None if self.ww is None else self.ww[i]
        lam = self.relaxation
        for j in range(len(crow) - 1):
            s, e = crow[j], crow[j + 1]
            if s == e:
                continue
            idx, a = col[s:e], val[s:e]
            upd = (b[j] - a @ xw[idx]) * (lam * d[j])
            if w is not None:
                upd = upd * w[j]
            xw.index_add_(0, idx, a[:, None] * upd[None, :])
        return xw


# ------------------------------------------------------------------------ registration
def _sequential_run(cls, op, data, iterations, x0, callbacks, options, run, name, **kw):
    run = run or RunOptions()
    data, x0, weight, cons = _prepare(op, data, iterations, x0, options, run)
    alg = cls(op, data, weight, options.relaxation, cons, order=options.order, seed=run.seed, **kw)
    return run_iterations(alg, x0, iterations, run, callbacks, name=name)


@register_method(
    "sirt",
    SIRTOptions,
    "SIRT: all images per update, row/column-sum scaling (ASTRA's)",
    default_iterations=100,
    work_volumes=2,
    work_images=2,
)
def sirt(
    op: Projector,
    data: torch.Tensor,
    iterations: int = 100,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: SIRTOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """SIRT: ``x ← P(x + λ C Aᵀ W R (b − A x))`` for ``iterations`` iterations."""
    options, run = options or SIRTOptions(), run or RunOptions()
    data, x0, weight, cons = _prepare(op, data, iterations, x0, options, run)
    alg = SIRT(op, data, weight, options.relaxation, cons)
    return run_iterations(alg, x0, iterations, run, callbacks, name="sirt")


@register_method(
    "sart",
    SARTOptions,
    "SART: one image per update, row/column-sum scaling",
    default_iterations=10,
    work_volumes=3,
    work_images=2,
)
def sart(
    op: Projector,
    data: torch.Tensor,
    iterations: int = 10,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: SARTOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """SART, one sweep over the images (in ``options.order``) per iteration."""
    options = options or SARTOptions()
    return _sequential_run(SART, op, data, iterations, x0, callbacks, options, run, "sart")


@register_method(
    "art",
    ARTOptions,
    "ART (Kaczmarz) per image block or per ray, with relaxation",
    default_iterations=5,
    work_volumes=3,
    work_images=2,
)
def art(
    op: Projector,
    data: torch.Tensor,
    iterations: int = 5,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: ARTOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """ART (Kaczmarz), one sweep over the images per iteration; see the module notes."""
    options = options or ARTOptions()
    return _sequential_run(
        ART, op, data, iterations, x0, callbacks, options, run, "art", block=options.block
    )
