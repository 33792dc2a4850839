"""The constrained reconstruction model (CRM) of Han et al. (2020) and its solvers.

Model (their Eqs. 2, 5, 6). One shared object ``h`` (the canonical object frame, zero
outside the boolean support ``s``) and, per copy ``i``, a background ``gᵢ`` on the copy's
volume outside the object's footprint ``mᵢ``. Copy ``i``'s volume is

    fᵢ = Pᵢ(s ⊙ h) + (1 − mᵢ) ⊙ gᵢ,    its images  bᵢ ≈ Aᵢ fᵢ = Dᵢ h + Bᵢ gᵢ,

with ``Aᵢ`` the projector of copy ``i``'s tilt series, ``Pᵢ`` the placement of the
object by the copy's pose (:mod:`wedge.average.poses`), ``Dᵢ = Aᵢ Pᵢ diag(s)`` and
``Bᵢ = Aᵢ diag(1 − mᵢ)``; ``mᵢ`` marks the copy voxels that receive any weight from
``Pᵢ s``, so the supports of object and background are disjoint (Eq. 2).

Solvers (all start from zero, as in the paper; ``w`` the relaxation in (0, 2)):

``"sart"`` — sparse SART (Eqs. 19–24, Fig. 2). Copies are visited in order; copy ``i``
    starts from the ``h`` left by the previous copy and from its own ``gᵢ`` of the previous
    iteration. Each block ``k`` of copy ``i``'s images updates

        (h, gᵢ) ← (h, gᵢ) + w V⁻¹ [Dᵢₖ, Bᵢₖ]ᵀ W⁻¹ (bᵢₖ − Dᵢₖ h − Bᵢₖ gᵢ)

    with ``V`` the column sums and ``W`` the row sums of ``[Dᵢₖ, Bᵢₖ]`` (zeros inverted to
    zero). ``block="copy"``: one block per copy, Eq. 23 literally. ``block="image"``
    (default): one block per image, Andersen & Kak's SART inside each copy, as wedge's
    ``sart``; the per-copy structure (h passed on, gᵢ kept) is that of Eqs. 23–24.
``"kaczmarz"`` — sparse Kaczmarz (Eqs. 16–17, Algorithm 1), one image (block of rays)
    per update: ``x ← x + w Aₖᵀ Rₖ (bₖ − Aₖ x) / max(Aₖᵀ 1)`` on ``x = (h, gᵢ)``; ``Rₖ`` the
    inverse row sums. Dividing by the largest column sum (a Schur bound on ``‖Rₖ^½ Aₖ‖²``)
    keeps every ``w`` in (0, 2) convergent, as wedge's ``art`` does on the general path;
    Eq. 16's exact per-ray norms ``‖A_j‖²`` are not used.
``"sirt"`` — the SIRT variant of the supplement: every copy's residual from the same
    iterate, ``h ← h + w V_h⁻¹ Σᵢ Dᵢᵀ Wᵢ⁻¹ rᵢ`` with ``V_h = Σᵢ Dᵢᵀ 1``, and
    ``gᵢ ← gᵢ + w V_{Bᵢ}⁻¹ Bᵢᵀ Wᵢ⁻¹ rᵢ``.

``positivity`` (off by default; the authors use no prior) clips ``h`` and ``gᵢ`` at zero
after every update.

Memory: the object, one copy's images and one copy's background are resident at a time.
Copies given as a lazy sequence (:class:`wedge.average.particles.MrcCopies`) are read on
demand; with ``background_dir`` the backgrounds live in memory-mapped ``.npy`` files there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from .._backend import resolve_device
from .._options import coerce_field, option_fields
from ..geometry import Geometry
from ..methods.algebraic import _Blocks, _fast_path
from ..projectors import make_projector
from ..runner import Callback, Iteration, RunOptions
from ..runner import run as run_iterations
from ..tiltseries import TiltSeries
from ._state import _Backgrounds, _Stats
from .poses import Resampler, place_operator
from .result import AverageProblem, AverageResult, prepare

__all__ = ["CRMOptions", "crm", "SOLVERS"]

Solver = Literal["sart", "kaczmarz", "sirt"]
SOLVERS: tuple[str, ...] = get_args(Solver)
#: placement operators are cached across iterations up to this many bytes
_PLACE_CACHE_BYTES = 512 * 2**20
#: integer-translation copies take the exact copy-space sweep (tests switch it off to
#: check the general sweep against it)
_CROP_FAST_PATH = True


@dataclasses.dataclass
class CRMOptions:
    """Options of :func:`crm` beyond its keyword arguments.

    Parameters
    ----------
    block : {"image", "copy"}
        SART blocks: one image per update (default; converges in fewer iterations on
        clean data) or the whole copy (Eq. 23 literally, and the paper's wording "once per
        copy"; each copy's noise then enters ``h`` averaged over its images, which is the
        better choice on noisy data: docs/average.md, Fig. 10).
    positivity : bool
        Clip the object and backgrounds at zero after every update (off: no priors).
    model : str
        Projector model (``"ray"``, ``"voxel"``, ``"fourier"``); see
        :func:`wedge.projectors.make_projector`.
    exact_residual : bool
        Re-project every copy after each iteration for the history (one more forward
        projection per image); otherwise the residual of each block is recorded just
        before its update, which costs nothing extra.
    background_dir : path or None
        Keep the backgrounds as memory-mapped ``background_NNNN.npy`` files in this
        (existing) directory instead of in memory. This is the streaming mode: nothing
        per copy stays in memory between visits (the placement operators are rebuilt on
        every visit instead of cached), so memory does not grow with the copies.
    """

    block: str = "image"
    positivity: bool = False
    model: str = "ray"
    exact_residual: bool = False
    background_dir: str | Path | None = None

    def __post_init__(self) -> None:
        for name, (tp, _) in option_fields(type(self)).items():
            object.__setattr__(self, name, coerce_field("crm", name, tp, getattr(self, name)))
        if self.block not in ("image", "copy"):
            raise ValueError(f"block must be 'image' or 'copy', got {self.block!r}.")
        if self.background_dir is not None and not Path(self.background_dir).is_dir():
            raise ValueError(
                f"background_dir {self.background_dir} is not an existing directory; "
                "create it first."
            )


def _inverse(t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    out = t.reciprocal()
    out[t <= eps] = 0.0
    return out


class _CopyOps:
    """The projector blocks of one copy geometry in a work layout (shared by copies of
    equal geometry), with their column sums ``Aₖᵀ 1`` and row sums ``Aₖ 1``.

    On wedge's sparse single-axis fast path the copy volume is held as (Z, X, Y) and the
    images as (n, X_det, Y), so each block is one sparse product with no permutation of
    the volume (as wedge's own SART); otherwise the layout is the native (Z, Y, X) and
    each block is a projector of the block's images.
    """

    def __init__(self, geometry: Geometry, model: str, block: str) -> None:
        full = make_projector(geometry, model)
        self.device = full.device
        n = geometry.n_images
        self.index = [slice(j, j + 1) for j in range(n)] if block == "image" else [slice(0, n)]
        self.sparse = _fast_path(full)
        nz, ny, nx = geometry.volume_shape
        if self.sparse:
            self.ny = ny
            self.shape = (nz, nx, ny)
            if block == "image":
                bl = _Blocks(full)
                self.a, self.at = bl.a_i, bl.at_i
            else:
                self.a, self.at = [full.a], [full.at]
            ones_v = torch.ones((nz * nx, 1), device=self.device)
            self.colsum = [
                torch.sparse.mm(at, torch.ones((at.shape[1], 1), device=self.device)).reshape(
                    nz, nx, 1
                )
                for at in self.at
            ]
            self.rowsum = [torch.sparse.mm(a, ones_v) for a in self.a]
        else:
            self.shape = (nz, ny, nx)
            self.blocks = (
                [make_projector(geometry[idx], model) for idx in self.index]
                if block == "image"
                else [full]
            )
            ones_v = torch.ones(self.shape, device=self.device)
            self.colsum = [
                b.adjoint(torch.ones(b.data_shape, device=self.device)) for b in self.blocks
            ]
            self.rowsum = [b.forward(ones_v) for b in self.blocks]

        self.inv_colsum = [_inverse(c) for c in self.colsum]
        self.inv_rowsum = [_inverse(r) for r in self.rowsum]
        self.colmax = [max(float(c.max()), 1e-12) for c in self.colsum]

    # layouts ---------------------------------------------------------------------------
    def to_layout(self, v: torch.Tensor) -> torch.Tensor:
        return v.permute(0, 2, 1).contiguous() if self.sparse else v

    def to_native(self, v: torch.Tensor) -> torch.Tensor:
        return v.permute(0, 2, 1).contiguous() if self.sparse else v

    def data(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The images of each block in the work layout."""
        if self.sparse:
            w = images.permute(0, 2, 1).contiguous()
            return [w[idx].reshape(-1, self.ny) for idx in self.index]
        return [images[idx] for idx in self.index]

    def forward(self, k: int, f: torch.Tensor) -> torch.Tensor:
        if self.sparse:
            return torch.sparse.mm(self.a[k], f.reshape(-1, self.ny))
        return self.blocks[k].forward(f)

    def adjoint(self, k: int, r: torch.Tensor) -> torch.Tensor:
        if self.sparse:
            return torch.sparse.mm(self.at[k], r).reshape(self.shape)
        return self.blocks[k].adjoint(r)

    def images_in(self, k: int) -> int:
        sl = self.index[k]
        return sl.stop - sl.start


class _Copy:
    """One copy's placement, footprint and cached per-block sums (in the work layout)."""

    def __init__(self, place: Resampler, support: torch.Tensor, ops: _CopyOps) -> None:
        self.place = place
        ps = place.forward(support)
        self.foot = ps > 0
        self.out = (~self.foot).to(torch.float32)
        # row sums of [D, B] are A (P s + (1 − m)); equal to A 1 for a crop of a 0/1 mask
        self.fill = None if place.identity_rows else ps + self.out
        n = len(ops.index)
        self.vd: list[torch.Tensor | None] = [None] * n
        self.rows: list[torch.Tensor | None] = [None] * n
        self.colmax: list[float | None] = [None] * n
        self.steps: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n


class CRMIteration(Iteration):
    """One CRM iteration = one sweep over every copy; the state's ``"x"`` is ``h``.

    For the runner the data are a zero (n_copies, 1, 1) tensor and ``state["ax"]`` each
    copy's residual norm ‖bᵢ − Aᵢfᵢ‖, so the runner's ``residual_norm`` is ‖b − A x‖ over
    all copies; the R-factor and Eq. 25's RMS error are added to each record by
    :meth:`record` (a callback installed by :func:`crm`).
    """

    def __init__(
        self,
        problem: AverageProblem,
        solver: str,
        relaxation: float,
        options: CRMOptions,
        device: torch.device,
    ) -> None:
        n = problem.n_copies
        super().__init__(None, torch.zeros((n, 1, 1), device=device), None)
        self.problem, self.solver, self.w = problem, solver, float(relaxation)
        self.options, self.device = options, device
        self.support = torch.from_numpy(problem.support.astype(np.float32)).to(device)
        folder = None if options.background_dir is None else Path(options.background_dir)
        self.bg = _Backgrounds(problem.volume_shapes, folder, device)
        self._ops: dict[Geometry, _CopyOps] = {}
        self._ops_of: dict[int, _CopyOps] = {}  # copy index → its (shared) operators
        self._copies: dict[int, _Copy] = {}
        self._cache_bytes = 0
        self.vh: torch.Tensor | None = None  # SIRT: Σᵢ Dᵢᵀ 1
        self.last: dict[str, float] = {}

    # -- caches ---------------------------------------------------------------------
    def ops(self, i: int) -> _CopyOps:
        if i in self._ops_of:
            return self._ops_of[i]
        geom = self.problem.geometries[i].to(self.device)
        if geom not in self._ops:
            block = "copy" if self.solver == "sirt" else self.options.block
            self._ops[geom] = _CopyOps(geom, self.options.model, block)
        self._ops_of[i] = self._ops[geom]
        return self._ops[geom]

    def copy(self, i: int, ops: _CopyOps) -> _Copy:
        if i in self._copies:
            return self._copies[i]
        p = self.problem
        place = place_operator(
            p.poses[i], p.object_shape, p.volume_shapes[i], self.device, zxy=ops.sparse
        )
        c = _Copy(place, self.support, ops)
        n_obj, n_vol = math.prod(p.object_shape), math.prod(p.volume_shapes[i])
        size = 24 * place.nnz + 5 * n_vol + 4 * (2 * n_obj + n_vol) * len(ops.index)
        size += 0 if c.fill is None else 8 * n_vol
        streaming = self.options.background_dir is not None  # keep memory flat in N
        if not streaming and self._cache_bytes + size <= _PLACE_CACHE_BYTES:
            self._copies[i] = c
            self._cache_bytes += size
        return c

    def images(self, i: int) -> torch.Tensor:
        s: TiltSeries = self.problem.copies[i]
        return torch.tensor(np.asarray(s.images, np.float32), device=self.device)

    # -- per-block sums -----------------------------------------------------------------
    def _vd(self, c: _Copy, ops: _CopyOps, k: int) -> torch.Tensor:
        """Column sums of Dₖ: s ⊙ Pᵀ Aₖᵀ 1."""
        if c.vd[k] is None:
            cs = ops.colsum[k].expand(ops.shape).contiguous()
            c.vd[k] = self.support * c.place.adjoint(cs)
        return c.vd[k]  # type: ignore[return-value]

    def _steps(self, c: _Copy, ops: _CopyOps, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """SART's per-voxel steps ``w s / Vd`` (object) and ``w (1 − m) / Vb`` (copy)."""
        if c.steps[k] is None:
            step_h = self.w * _inverse(self._vd(c, ops, k)) * self.support
            step_g = self.w * _inverse(c.out * ops.colsum[k])
            c.steps[k] = (step_h, step_g)
        return c.steps[k]  # type: ignore[return-value]

    def _rows(self, c: _Copy, ops: _CopyOps, k: int) -> torch.Tensor:
        """Inverse row sums of [Dₖ, Bₖ]: 1 / Aₖ(P s + 1 − m)."""
        if c.fill is None:
            return _inverse(ops.rowsum[k])
        if c.rows[k] is None:
            c.rows[k] = _inverse(ops.forward(k, c.fill))
        return c.rows[k]  # type: ignore[return-value]

    def _colmax(self, c: _Copy, ops: _CopyOps, k: int) -> float:
        if c.colmax[k] is None:
            vb = float((c.out * ops.colsum[k]).max())
            c.colmax[k] = max(float(self._vd(c, ops, k).max()), vb, 1e-12)
        return c.colmax[k]  # type: ignore[return-value]

    # -- the model --------------------------------------------------------------------
    def volume(self, c: _Copy, h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """fᵢ = Pᵢ(s ⊙ h) + (1 − mᵢ) ⊙ gᵢ (work layout)."""
        return c.place.forward(self.support * h) + c.out * g

    def _clip(self, t: torch.Tensor) -> torch.Tensor:
        return t.clamp_min(0.0) if self.options.positivity else t

    # -- runner interface -------------------------------------------------------------
    def init(self, x0: torch.Tensor) -> dict[str, Any]:
        return {"x": x0.clone(), "ax": torch.zeros_like(self.data)}

    def step(self, state: dict[str, Any], k: int) -> dict[str, Any]:
        h = state["x"]
        stats = _Stats(self.problem.n_copies, self.device)
        if self.solver == "sirt":
            h = self._sirt(h, stats)
        else:
            for i in range(self.problem.n_copies):
                h = self._sweep_copy(i, h, stats)
        if self.options.exact_residual:
            stats = _Stats(self.problem.n_copies, self.device)
            for i in range(self.problem.n_copies):
                ops = self.ops(i)
                c, data = self.copy(i, ops), ops.data(self.images(i))
                f = self.volume(c, h, ops.to_layout(self.bg.get(i)))
                res = [b - ops.forward(j, f) for j, b in enumerate(data)]
                stats.add(i, data, res, ops)
        self.last = stats.summary()
        return {"x": h, "ax": stats.norms().reshape(-1, 1, 1)}

    def record(self, rec: dict[str, float], x: torch.Tensor) -> None:
        """Callback: add the R-factor and Eq. 25's RMS error of this iteration."""
        rec.update(self.last)

    # -- solvers ----------------------------------------------------------------------
    def _sweep_copy(self, i: int, h: torch.Tensor, stats: _Stats) -> torch.Tensor:
        ops = self.ops(i)
        c, data = self.copy(i, ops), ops.data(self.images(i))
        g = ops.to_layout(self.bg.get(i))
        s, w = self.support, self.w
        if c.place.identity_rows and _CROP_FAST_PATH:
            return self._sweep_crop(i, c, ops, data, h, g, stats)
        res = []
        for k, b in enumerate(data):
            r = b - ops.forward(k, self.volume(c, h, g))
            res.append(r)
            back = ops.adjoint(k, self._rows(c, ops, k) * r)
            if self.solver == "kaczmarz":
                scale = w / self._colmax(c, ops, k)
                h = self._clip(h + scale * s * c.place.adjoint(back))
                g = self._clip(g + scale * c.out * back)
            else:
                step_h, step_g = self._steps(c, ops, k)
                h = self._clip(h + step_h * c.place.adjoint(back))
                g = self._clip(g + step_g * back)
        stats.add(i, data, res, ops)
        self.bg.put(i, ops.to_native(g))
        return h

    def _sweep_crop(self, i, c, ops, data, h, g, stats) -> torch.Tensor:
        """The same sweep when ``Pᵢ`` is a crop (integer translation, no rotation).

        Then ``Pᵢ diag(Vd⁻¹ s) Pᵢᵀ`` is ``diag(m / Aₖᵀ1)`` on the copy and every update of
        ``(h, gᵢ)`` is the update of ``fᵢ = Pᵢ(s ⊙ h) + (1 − mᵢ) ⊙ gᵢ`` by plain SART (or
        Kaczmarz) in the copy's volume: identical iterates, one placement per visit
        instead of two per image (checked against the dense stacked system in the tests).
        """
        f = self.volume(c, h, g)
        w = self.w
        res = []
        for k, b in enumerate(data):
            r = b - ops.forward(k, f)
            res.append(r)
            back = ops.adjoint(k, ops.inv_rowsum[k] * r)
            if self.solver == "kaczmarz":
                f = self._clip(f + (w / ops.colmax[k]) * back)
            else:
                f = self._clip(f + w * ops.inv_colsum[k] * back)
        stats.add(i, data, res, ops)
        self.bg.put(i, ops.to_native(c.out * f))
        return self.support * c.place.adjoint(f)

    def _sirt(self, h: torch.Tensor, stats: _Stats) -> torch.Tensor:
        s, w = self.support, self.w
        if self.vh is None:
            vh = torch.zeros_like(h)
            for i in range(self.problem.n_copies):
                ops = self.ops(i)
                vh += self._vd(self.copy(i, ops), ops, 0)
            self.vh = _inverse(vh)
        acc = torch.zeros_like(h)
        for i in range(self.problem.n_copies):
            ops = self.ops(i)
            c, (b,) = self.copy(i, ops), ops.data(self.images(i))
            g = ops.to_layout(self.bg.get(i))
            r = b - ops.forward(0, self.volume(c, h, g))
            stats.add(i, [b], [r], ops)
            back = ops.adjoint(0, self._rows(c, ops, 0) * r)
            acc += s * c.place.adjoint(back)
            g = self._clip(g + w * _inverse(c.out * ops.colsum[0]) * back)
            self.bg.put(i, ops.to_native(g))
        return self._clip(h + w * self.vh * acc)


def crm(
    copies: Sequence[TiltSeries],
    poses: Any,
    object_shape: Sequence[int],
    *,
    support: Any = None,
    solver: str = "sart",
    iterations: int = 20,
    relaxation: float = 0.2,
    volume_shape: Any = None,
    options: CRMOptions | None = None,
    return_backgrounds: bool = False,
    run: RunOptions | None = None,
    callbacks: Sequence[Callback] = (),
    device: str | torch.device | None = None,
) -> AverageResult:
    """Reconstruct one object from many copies with the constrained reconstruction model.

    Parameters
    ----------
    copies : sequence of TiltSeries
        One tilt series per copy, images (n, Y, X) in line integrals (voxel units); 2D
        problems are (n, 1, X). A lazy sequence (e.g. :class:`MrcCopies`) is read one copy
        at a time.
    poses : array (n_copies, 6)
        ``(x, y, z, φ, θ, ψ)``: the object's centre in voxels relative to the centre
        (index (N − 1)/2) of the copy's volume, then wedge Euler angles in degrees
        mapping the object's canonical frame into the copy (``q = R p + t``).
    object_shape : (Z, Y, X)
        Shape of the canonical object.
    support : bool array of ``object_shape``, optional
        Where the object may be non-zero; default the inscribed sphere (circle in 2D).
    solver : {"sart", "kaczmarz", "sirt"}
        See the module notes (Eqs. 16–17, 19–24, supplement).
    iterations : int
        Sweeps over all copies.
    relaxation : float
        ``w`` in (0, 2); the paper uses 0.2.
    volume_shape : (Z, Y, X) or one per copy, optional
        Each copy's volume; default (X, Y, X) of its images.
    options : CRMOptions, optional
        Block size, positivity, projector model, exact residual, background storage.
    return_backgrounds : bool
        Return the backgrounds ``gᵢ`` (copy volumes, zero on the object's footprint).
    run : RunOptions, optional
        The shared runner's options: progress, ``tol``, ``reference`` (a ground-truth
        object, whose metrics join the history). Hold-out and checkpoints are refused
        (the backgrounds are not part of the runner's state).
    callbacks : sequence of callables
        As in :func:`wedge.runner.run`.
    device : str or torch.device, optional

    Returns
    -------
    AverageResult
        ``object`` (Z, Y, X) float32, zero outside the support; ``history`` with the
        runner's records plus ``rms_reprojection_error`` (Eq. 25) and ``r_factor``.

    Raises
    ------
    ValueError
        Any input refused by :func:`wedge.average.result.prepare`, an unknown solver, a
        relaxation outside (0, 2), a non-positive iteration count, hold-out or
        checkpoint options.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown CRM solver {solver!r}; known solvers: {', '.join(SOLVERS)}.")
    _check_common(iterations, relaxation)
    opts = options or CRMOptions()
    run = run or RunOptions(progress=False)
    if run.holdout or run.checkpoint is not None:
        raise ValueError(
            "crm does not support hold-out or checkpoints (the backgrounds live outside the "
            "runner's state); set holdout=0 and checkpoint=None."
        )
    problem = prepare(copies, poses, object_shape, support, volume_shape)
    dev = resolve_device(device)
    _check_memory(problem, opts, dev)
    alg = CRMIteration(problem, solver, relaxation, opts, dev)
    x0 = torch.zeros(problem.object_shape, device=dev)
    res = run_iterations(alg, x0, iterations, run, [alg.record, *callbacks], name=f"crm-{solver}")
    obj = (res.x * alg.support).detach().cpu().numpy().astype(np.float32)
    return AverageResult(
        object=obj,
        method="crm",
        history=res.history,
        support=problem.support,
        backgrounds=alg.bg.result() if return_backgrounds else None,
        stopped=res.stopped,
    )


def _check_memory(problem: AverageProblem, opts: CRMOptions, device: torch.device) -> None:
    """Refuse, before any work, a run whose resident arrays cannot fit: one copy's working
    volumes and images, its projector, the object and its per-copy caches (bounded), and
    every background unless they stream to ``background_dir``."""
    from ..memory import check_memory, estimate_memory
    from ..projectors.options import projector_name

    big = max(range(problem.n_copies), key=lambda i: math.prod(problem.volume_shapes[i]))
    geom = problem.geometries[big]
    backgrounds = 0
    if opts.background_dir is None:
        backgrounds = sum(4 * math.prod(v) for v in problem.volume_shapes)
    est = estimate_memory(
        geom.volume_shape,
        geom.data_shape,
        work_volumes=6,
        work_images=3,
        projector=projector_name(opts.model, geom.is_single_axis),
        extra=backgrounds + 8 * math.prod(problem.object_shape) + _PLACE_CACHE_BYTES // 4,
    )
    check_memory(est, device, "the constrained reconstruction")


def _check_common(iterations: Any, relaxation: Any) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer):
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}.")
    if iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations}.")
    if isinstance(relaxation, bool) or not isinstance(relaxation, int | float):
        raise ValueError(f"relaxation must be a number in (0, 2), got {relaxation!r}.")
    if not 0.0 < float(relaxation) < 2.0:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}; the paper uses 0.2.")
