"""Angular refinement by re-projection (RESIRE's procedure, Pham et al. 2023, "Angular refinement").

One round: reconstruct with RESIRE from the current orientations; then, for every image,
change its Euler angles (φ, θ, ψ) within ±δ of the current values and keep the ones whose
re-projection of the reconstruction best matches the measured image (R-factor, Eq. 10, or
correlation); optionally re-estimate the image's in-plane shift by cross-correlation.
Rounds repeat until no image changes (or ``rounds`` is reached).

Two searches are offered:

``brute`` (the paper's)
    Coordinate-wise grid search, coarse to fine: each selected angle in turn is scanned on a
    grid of ``step`` degrees over ±δ, then on a grid ``refinement_factor`` times finer over
    ±step around the best, and so on for ``levels`` levels. All candidates of all images at
    one level are projected in batches from one volume.
``gradient``
    Gradient descent (Adam) on the orientations and shifts through the differentiable
    Fourier-slice projector (``∂ projection / ∂ pose``), minimising the squared projection
    error, clamped to ±δ. Much cheaper than scanning when several angles are refined.

Angles are degrees at the boundary; the volume is (Z, Y, X) with the (N−1)/2 centre.
An in-plane tilt-axis angle α (a :class:`~wedge.TiltSeries`'s ``tilt_axis_angle``) enters
the geometry as the extra rotation ``Z(α)`` of :class:`~wedge.geometry.Geometry`
(image position ``(Z(α) R p)[:2] + (dx, dy)``); the images are not resampled, and the
refined (φ, θ, ψ) and shifts are in the same frame as the input ones.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._backend import as_tensor, resolve_device
from ..geometry import Geometry, euler_to_matrix, rotation_z
from ..projectors import make_projector
from ..projectors.fourier import fourier_slice_project
from ..projectors.general import project_rays
from ..runner import RunOptions
from ..tiltseries import TiltSeries

__all__ = ["RefineOptions", "RefineResult", "refine_angles", "refine_angles_file", "score_images"]

_ANGLES = {"phi": 0, "theta": 1, "psi": 2}
_ALL_ANGLES = ("phi", "theta", "psi")
#: angle files that hold only the tilt angle θ, one per line
_THETA_ONLY_SUFFIXES = (".tlt", ".rawtlt")


@dataclasses.dataclass
class RefineOptions:
    """Options of :func:`refine_angles`.

    Parameters
    ----------
    search_range : float, degrees
        δ: each angle is searched within ±δ of its current value (> 0; paper: 3°).
    step : float, degrees
        Grid step of the coarsest level (> 0, ≤ search_range).
    levels : int
        Coarse-to-fine levels; level k+1 scans ±step_k around the best with step
        step_k / ``refinement_factor``.
    refinement_factor : float
    angles : tuple of {"phi", "theta", "psi"}, or None
        Which Euler angles to refine. None (the default) means "what the output can hold":
        θ only when :func:`refine_angles_file` writes a ``.tlt``/``.rawtlt`` file,
        (φ, θ, ψ) otherwise (and always in :func:`refine_angles`).
    refine_shifts : bool
        Re-estimate per-image shifts by cross-correlation (within ``max_shift`` pixels).
    max_shift : float, pixels
    metric : {"r_factor", "correlation"}
        Score of a candidate re-projection (lower R-factor / higher correlation wins).
    search : {"brute", "gradient"}
    rounds : int
        Maximum reconstruct/refine rounds; stops earlier when no image changes by more than
        ``tolerance`` degrees.
    tolerance : float, degrees
    iterations : int
        RESIRE iterations per reconstruction (the first round; later rounds continue from
        the previous volume with half as many).
    model : str
        Projector of the reconstructions and of the search ("fourier" or "ray").
    resire_step : float
        RESIRE's normalised step t.
    gradient_steps : int
        Adam steps per round of the gradient search.
    learning_rate : float, degrees (and pixels) per step
    """

    search_range: float = 3.0
    step: float = 0.5
    levels: int = 3
    refinement_factor: float = 5.0
    angles: tuple[str, ...] | None = None
    refine_shifts: bool = False
    max_shift: float = 5.0
    metric: str = "r_factor"
    search: str = "brute"
    rounds: int = 5
    tolerance: float = 1e-3
    iterations: int = 50
    model: str = "fourier"
    resire_step: float = 2.0
    gradient_steps: int = 40
    learning_rate: float = 0.1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.search_range) and self.search_range > 0):
            raise ValueError(
                f"search_range must be a positive number of degrees, got {self.search_range}."
            )
        if not (0 < self.step <= self.search_range):
            raise ValueError(
                f"step must lie in (0, search_range={self.search_range}] deg, got {self.step}."
            )
        if self.levels < 1 or self.rounds < 1 or self.iterations < 1 or self.gradient_steps < 1:
            raise ValueError("levels, rounds, iterations and gradient_steps must be ≥ 1.")
        if self.refinement_factor <= 1:
            raise ValueError(f"refinement_factor must exceed 1, got {self.refinement_factor}.")
        if self.angles is not None:
            self.angles = (self.angles,) if isinstance(self.angles, str) else tuple(self.angles)
            bad = [a for a in self.angles if a not in _ANGLES]
            if bad or not self.angles:
                raise ValueError(
                    "angles must be None or a non-empty subset of ('phi', 'theta', 'psi'), "
                    f"got {self.angles}."
                )
        if self.metric not in ("r_factor", "correlation"):
            raise ValueError(f"metric must be 'r_factor' or 'correlation', got {self.metric!r}.")
        if self.search not in ("brute", "gradient"):
            raise ValueError(f"search must be 'brute' or 'gradient', got {self.search!r}.")
        if not self.max_shift > 0 or not self.learning_rate > 0 or self.tolerance < 0:
            raise ValueError("max_shift and learning_rate must be > 0 and tolerance ≥ 0.")

    def resolved(self, output_suffix: str | None = None) -> RefineOptions:
        """A copy with ``angles`` made explicit: when None, ``("theta",)`` for an output
        suffix that holds only tilt angles (``.tlt``, ``.rawtlt``), else (φ, θ, ψ)."""
        if self.angles is not None:
            return self
        theta_only = (output_suffix or "").lower() in _THETA_ONLY_SUFFIXES
        return dataclasses.replace(self, angles=("theta",) if theta_only else _ALL_ANGLES)


@dataclasses.dataclass
class RefineResult:
    """Refined orientations, shifts, the last reconstruction and per-round figures.

    Attributes
    ----------
    euler : ndarray (n, 3), degrees
        Refined (φ, θ, ψ), in the frame of the input (the tilt-axis angle is not folded in).
    shifts : ndarray (n, 2), pixels
    volume : ndarray (Z, Y, X)
    history : list of dict
        Per round: ``round``, ``r_factor`` (Eq. 10 of the reconstruction before the search),
        ``changed`` (images whose pose moved), ``max_change_deg``, ``time_s``.
    tilt_axis_angle : float, degrees
        The in-plane tilt-axis angle the refinement used (held fixed).
    series : TiltSeries or None
        When :func:`refine_angles` was given a :class:`~wedge.TiltSeries`: that series with
        the refined orientations and shifts (:meth:`apply`); otherwise None.
    """

    euler: np.ndarray
    shifts: np.ndarray
    volume: np.ndarray
    history: list[dict[str, float]]
    tilt_axis_angle: float = 0.0
    series: TiltSeries | None = None

    @property
    def angles(self) -> np.ndarray:
        """Refined tilt angles θ (n,), degrees."""
        return self.euler[:, 1].copy()

    def apply(self, series: TiltSeries) -> TiltSeries:
        """``series`` with its orientations and shifts replaced by the refined ones.

        Everything else (images, pixel size, tilt-axis angle, defocus, …) is kept. The Euler
        angles are stored only when φ or ψ is non-zero, so a θ-only refinement stays a
        single-axis series.
        """
        if not isinstance(series, TiltSeries):
            raise TypeError("apply() needs a wedge.TiltSeries.")
        if series.n_tilts != self.euler.shape[0]:
            raise ValueError(
                f"the series has {series.n_tilts} images but the refinement has "
                f"{self.euler.shape[0]} orientations."
            )
        e = self.euler
        single_axis = not np.any(e[:, [0, 2]])
        return series.replace(
            angles=e[:, 1].copy(),
            euler=None if single_axis else e.copy(),
            shifts=self.shifts.copy() if np.any(self.shifts) else None,
        )


# ----------------------------------------------------------------------------- scoring
def score_images(calculated: torch.Tensor, measured: torch.Tensor, metric: str) -> torch.Tensor:
    """Score of each calculated image (…, Y, X) against its measured one; lower is better.

    ``r_factor``: Σ|p − b| / Σ|b| (RESIRE Eq. 10, one image); ``correlation``: minus the
    Pearson correlation.
    """
    if metric == "r_factor":
        return (calculated - measured).abs().sum((-2, -1)) / measured.abs().sum((-2, -1)).clamp(
            min=1e-30
        )
    p = calculated - calculated.mean((-2, -1), keepdim=True)
    b = measured - measured.mean((-2, -1), keepdim=True)
    num = (p * b).sum((-2, -1))
    den = torch.sqrt((p * p).sum((-2, -1)) * (b * b).sum((-2, -1))).clamp(min=1e-30)
    return -num / den


def _project(
    x: torch.Tensor,
    euler_deg: torch.Tensor,
    shifts: torch.Tensor,
    detector: tuple[int, int],
    model: str,
    chunk: int = 96,
    tilt_axis_angle: float = 0.0,
) -> torch.Tensor:
    """Projections of ``x`` at orientations (m, 3) degrees and shifts (m, 2), differentiable.

    The rotation of each image is ``Z(α) R(φ, θ, ψ)`` with α = ``tilt_axis_angle`` degrees,
    as :meth:`wedge.geometry.Geometry.matrices`.
    """
    za = None
    if tilt_axis_angle:
        za = rotation_z(torch.tensor(math.radians(tilt_axis_angle), dtype=torch.float64))
        za = za.to(euler_deg.device)
    out = []
    for i in range(0, euler_deg.shape[0], chunk):
        m = euler_to_matrix(torch.deg2rad(euler_deg[i : i + chunk].double()))
        if za is not None:
            m = za @ m
        m = m.float()
        sh = shifts[i : i + chunk]
        if model == "fourier":
            out.append(fourier_slice_project(x, m, sh, detector, 3.0))
        else:
            out.append(project_rays(x, m, sh, detector, 0.5))
    return torch.cat(out)


def _xcorr_shift(calc: torch.Tensor, meas: torch.Tensor, max_shift: float) -> torch.Tensor:
    """Shift (dx, dy) that moves each calculated image onto the measured one, (n, 2) pixels.

    Peak of the FFT cross-correlation within ``max_shift``, refined by a parabola through
    the peak and its neighbours along each axis.
    """
    n, ny, nx = calc.shape
    c = torch.fft.ifft2(torch.fft.fft2(meas) * torch.fft.fft2(calc).conj()).real
    fy = torch.fft.fftfreq(ny, 1 / ny, device=calc.device)
    fx = torch.fft.fftfreq(nx, 1 / nx, device=calc.device)
    allowed = (fy[:, None] ** 2 + fx[None, :] ** 2) <= max_shift**2
    c = torch.where(allowed, c, torch.finfo(c.dtype).min)
    flat = c.reshape(n, -1).argmax(1)
    iy, ix = flat // nx, flat % nx
    ar = torch.arange(n, device=calc.device)

    def parabola(cm: torch.Tensor, c0: torch.Tensor, cp: torch.Tensor) -> torch.Tensor:
        den = cm - 2 * c0 + cp
        return torch.where(den.abs() > 1e-12, 0.5 * (cm - cp) / den, torch.zeros_like(den))

    c0 = c[ar, iy, ix]
    dy = parabola(c[ar, (iy - 1) % ny, ix], c0, c[ar, (iy + 1) % ny, ix])
    dx = parabola(c[ar, iy, (ix - 1) % nx], c0, c[ar, iy, (ix + 1) % nx])
    return torch.stack([fx[ix] + dx.clamp(-0.5, 0.5), fy[iy] + dy.clamp(-0.5, 0.5)], 1)


# ----------------------------------------------------------------------------- searches
def _brute_search(
    x: torch.Tensor,
    b: torch.Tensor,
    euler: torch.Tensor,
    shifts: torch.Tensor,
    start: torch.Tensor,
    opts: RefineOptions,
    tilt_axis_angle: float = 0.0,
) -> torch.Tensor:
    """Coordinate-wise coarse-to-fine grid search; returns the new (n, 3) angles."""
    n = b.shape[0]
    det = (b.shape[1], b.shape[2])
    e = euler.clone()
    for a in opts.resolved().angles:
        col = _ANGLES[a]
        step, half = opts.step, opts.search_range
        for _ in range(opts.levels):
            k = int(math.floor(half / step + 1e-9))
            offs = torch.arange(-k, k + 1, device=x.device, dtype=torch.float64) * step
            m = offs.numel()
            cand = e[:, None, :].repeat(1, m, 1)  # (n, m, 3)
            cand[:, :, col] = cand[:, :, col] + offs
            lo = start[:, col] - opts.search_range
            hi = start[:, col] + opts.search_range
            cand[:, :, col] = torch.minimum(
                torch.maximum(cand[:, :, col], lo[:, None]), hi[:, None]
            )
            sh = shifts[:, None, :].expand(n, m, 2).reshape(-1, 2)
            with torch.no_grad():
                p = _project(
                    x, cand.reshape(-1, 3), sh, det, opts.model, tilt_axis_angle=tilt_axis_angle
                ).reshape(n, m, *det)
                s = score_images(p, b[:, None], opts.metric)
            best = s.argmin(1)
            e[:, col] = cand[torch.arange(n), best, col]
            half, step = step, step / opts.refinement_factor
    return e


def _gradient_search(
    x: torch.Tensor,
    b: torch.Tensor,
    euler: torch.Tensor,
    shifts: torch.Tensor,
    start: torch.Tensor,
    opts: RefineOptions,
    tilt_axis_angle: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adam on (selected angles, shifts) through the differentiable projector."""
    det = (b.shape[1], b.shape[2])
    mask = torch.zeros(3, dtype=torch.float64, device=x.device)
    for a in opts.resolved().angles:
        mask[_ANGLES[a]] = 1.0
    de = torch.zeros_like(euler, requires_grad=True)
    ds = torch.zeros_like(shifts, dtype=torch.float64, requires_grad=True)
    params = [de, ds] if opts.refine_shifts else [de]
    optim = torch.optim.Adam(params, lr=opts.learning_rate)
    scale = float((b * b).sum()) or 1.0
    xd = x.detach()
    for _ in range(opts.gradient_steps):
        optim.zero_grad()
        e = euler + de * mask
        p = _project(
            xd, e.float(), (shifts + ds).float(), det, opts.model, tilt_axis_angle=tilt_axis_angle
        )
        loss = ((p - b) ** 2).sum() / scale
        loss.backward()
        optim.step()
        with torch.no_grad():
            lo, hi = start - euler - opts.search_range, start - euler + opts.search_range
            de.copy_(torch.minimum(torch.maximum(de, lo), hi))
            ds.clamp_(-opts.max_shift, opts.max_shift)
    return (euler + de.detach() * mask), (shifts + ds.detach())


# ----------------------------------------------------------------------------- driver
def _reconstruct(
    images: torch.Tensor,
    geom: Geometry,
    x0: torch.Tensor | None,
    iterations: int,
    opts: RefineOptions,
) -> tuple[torch.Tensor, float]:
    from ..methods.resire import RESIREOptions, _run_resire

    op = make_projector(geom, opts.model)
    res = _run_resire(
        op,
        images,
        iterations,
        x0,
        (),
        RESIREOptions(step=opts.resire_step),
        RunOptions(progress=False),
    )
    return res.x, float(res.history[-1]["r_factor"])


def refine_angles(
    images: Any,
    euler: Any = None,
    *,
    volume_shape: tuple[int, int, int] | None = None,
    shifts: Any = None,
    tilt_axis_angle: float | None = None,
    options: RefineOptions | None = None,
    device: Any = None,
) -> RefineResult:
    """Refine per-image Euler angles (and shifts) by RESIRE re-projection matching.

    Parameters
    ----------
    images : TiltSeries, or array (n, Y, X)
        Measured projections (line integrals). A :class:`~wedge.TiltSeries` brings its own
        orientations (``euler_angles()``), shifts and tilt-axis angle; then ``euler``,
        ``shifts`` and ``tilt_axis_angle`` must not be given.
    euler : array (n, 3) as (φ, θ, ψ) degrees, or (n,) tilt angles θ
        Starting orientations (required with an array of images).
    volume_shape : (Z, Y, X), optional
        Defaults to (X, Y, X).
    shifts : array (n, 2), pixels, optional
    tilt_axis_angle : float, degrees, optional
        In-plane tilt-axis angle α (counter-clockwise from image Y, IMOD's rotation angle),
        held fixed; it composes as ``Z(α) R`` (see :class:`~wedge.geometry.Geometry`).
        Default 0 (or the series').
    options : RefineOptions
        ``angles=None`` refines (φ, θ, ψ).
    device : str, optional

    Returns
    -------
    RefineResult
        Arrays are NumPy; the inputs are not modified. For a TiltSeries input,
        ``result.series`` is the series with the refined orientations and shifts; for
        arrays, ``result.apply(series)`` builds one.
    """
    opts = (options or RefineOptions()).resolved()
    series: TiltSeries | None = None
    voxel_size = 1.0
    if isinstance(images, TiltSeries):
        kw = {"euler": euler, "shifts": shifts, "tilt_axis_angle": tilt_axis_angle}
        given = [name for name, v in kw.items() if v is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} must not be given with a TiltSeries: refine_angles takes "
                "them from the series (build a new TiltSeries to change them)."
            )
        if images.is_focal_series:
            raise ValueError(
                "refine_angles needs projections (n, Y, X), not a focal series "
                f"{images.shape}; average each tilt's focal series first."
            )
        series = images
        images, euler, shifts = series.images, series.euler_angles(), series.shifts
        tilt_axis_angle = series.tilt_axis_angle
        voxel_size = series.pixel_size
    if euler is None:
        raise ValueError("euler (the starting angles) is required with an array of images.")
    alpha = 0.0 if tilt_axis_angle is None else float(tilt_axis_angle)
    if not math.isfinite(alpha):
        raise ValueError(f"tilt_axis_angle must be a finite number of degrees, got {alpha}.")
    dev = resolve_device(device, images)
    b = as_tensor(images, dev)
    if b.ndim != 3:
        raise ValueError(f"images must be (n, Y, X), got shape {tuple(b.shape)}.")
    n, ny, nx = b.shape
    e_in = np.asarray(euler, dtype=np.float64)
    if e_in.ndim == 1 and e_in.size == n:
        e_in = np.stack([np.zeros(n), e_in, np.zeros(n)], 1)
    if e_in.shape != (n, 3):
        raise ValueError(
            f"euler must have shape ({n}, 3) as (phi, theta, psi) degrees, or ({n},) tilt "
            f"angles, for {n} images; got {np.asarray(euler).shape}."
        )
    if not np.all(np.isfinite(e_in)):
        raise ValueError("euler contains NaN or Inf; pass finite angles in degrees.")
    sh_in = np.zeros((n, 2)) if shifts is None else np.asarray(shifts, dtype=np.float64)
    if sh_in.shape != (n, 2):
        raise ValueError(f"shifts must have shape ({n}, 2) as (dx, dy) pixels, got {sh_in.shape}.")
    shape = tuple(volume_shape) if volume_shape is not None else (nx, ny, nx)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"volume_shape must be 3 positive integers (Z, Y, X), got {shape}.")

    import time

    euler_t = torch.tensor(e_in, dtype=torch.float64, device=dev)
    start = euler_t.clone()
    shifts_t = torch.tensor(sh_in, dtype=torch.float32, device=dev)
    history: list[dict[str, float]] = []
    x: torch.Tensor | None = None
    t0 = time.perf_counter()
    for rnd in range(opts.rounds):
        geom = Geometry(
            shape,
            (ny, nx),
            euler_t.cpu().numpy(),
            shifts=shifts_t.cpu().numpy(),
            tilt_axis_angle=alpha,
            voxel_size=voxel_size,
            device=str(dev),
        )
        its = opts.iterations if x is None else max(1, opts.iterations // 2)
        x, rf = _reconstruct(b, geom, x, its, opts)
        if opts.search == "brute":
            new = _brute_search(x, b, euler_t, shifts_t, start, opts, tilt_axis_angle=alpha)
            new_shifts = shifts_t
            if opts.refine_shifts:
                with torch.no_grad():
                    p = _project(
                        x, new.float(), shifts_t, (ny, nx), opts.model, tilt_axis_angle=alpha
                    )
                new_shifts = shifts_t + _xcorr_shift(p, b, opts.max_shift)
                new_shifts = new_shifts.clamp(-opts.max_shift, opts.max_shift)
        else:
            new, new_shifts = _gradient_search(
                x, b, euler_t, shifts_t.double(), start, opts, tilt_axis_angle=alpha
            )
            new_shifts = new_shifts.float()
        change = (new - euler_t).abs().max(1).values
        moved = change > opts.tolerance
        if opts.refine_shifts:
            moved |= (new_shifts - shifts_t).abs().max(1).values > 0.01
        history.append(
            {
                "round": float(rnd + 1),
                "r_factor": rf,
                "changed": float(moved.sum()),
                "max_change_deg": float(change.max()),
                "time_s": time.perf_counter() - t0,
            }
        )
        euler_t, shifts_t = new, new_shifts
        if not bool(moved.any()):
            break
    result = RefineResult(
        euler=euler_t.cpu().numpy(),
        shifts=shifts_t.double().cpu().numpy(),
        volume=x.detach().cpu().numpy() if x is not None else np.zeros(shape, np.float32),
        history=history,
        tilt_axis_angle=alpha,
    )
    if series is not None:
        result.series = result.apply(series)
    return result


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    return a.exists() and b.exists() and a.samefile(b)


def refine_angles_file(
    stack: str | Path,
    angles_in: str | Path,
    out_angles: str | Path,
    *,
    thickness: int | None = None,
    options: RefineOptions | None = None,
    device: Any = None,
) -> Path:
    """Refine the tilt angles of a stack and write them to a NEW file (never the input).

    Parameters
    ----------
    stack : path
        Tilt series readable by :func:`wedge.read_tiltseries`.
    angles_in : path
        Starting tilt angles (``.tlt``/``.rawtlt``/``.txt``/``.csv``/``.mdoc``, degrees).
    out_angles : path
        Output. ``.tlt``/``.rawtlt``: the refined θ, one per line (IMOD). Any other suffix:
        a text table with columns ``phi theta psi dx dy`` (degrees, pixels).
    thickness : int, optional
        Z size of the reconstructions (default: image width).
    options : RefineOptions
        ``angles=None`` (the default) refines what the output can hold: θ for
        ``.tlt``/``.rawtlt``, (φ, θ, ψ) for a table.
    device : str, optional

    Raises
    ------
    ValueError
        When ``out_angles`` is the input angle file or the stack, or when the options ask
        for φ, ψ or shifts that a ``.tlt``/``.rawtlt`` output cannot hold — before any work.
    """
    from ..io import read_angles, read_tiltseries
    from ..io.angles import write_angles
    from ..io.atomic import atomic_output

    stack, angles_in, out = Path(stack), Path(angles_in), Path(out_angles)
    for src, what in ((angles_in, "input angle file"), (stack, "stack")):
        if _same_file(out, src):
            raise ValueError(
                f"the output {out} is the {what}; refinement never overwrites its input — "
                "give a new file name for the refined angles."
            )
    suffix = out.suffix.lower()
    opts = (options or RefineOptions()).resolved(suffix)
    theta_only = suffix in _THETA_ONLY_SUFFIXES
    if theta_only and (set(opts.angles) - {"theta"} or opts.refine_shifts):
        raise ValueError(
            f"{out.name} can hold only tilt angles θ; refine angles=('theta',) without shifts, "
            "or write a .txt table (phi theta psi dx dy)."
        )
    angles = read_angles(angles_in)
    series = read_tiltseries(stack, angles=angles)
    n, ny, nx = series.images.shape
    shape = (int(thickness) if thickness else nx, ny, nx)
    res = refine_angles(series, volume_shape=shape, options=opts, device=device)
    if theta_only:
        return write_angles(out, res.euler[:, 1])
    table = np.concatenate([res.euler, res.shifts], 1)
    with atomic_output(out) as tmp:
        np.savetxt(tmp, table, fmt="%.6f", header="phi theta psi dx dy (degrees, pixels)")
    return out
