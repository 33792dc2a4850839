"""Fine alignment: projection matching and joint gradient refinement of the geometry.

Two refinements that start where :func:`~wedge.align.coarse.coarse_align` stops, and a
driver that runs the three in a row:

``match`` (:func:`projection_matching`)
    Each round reconstructs the volume from the series' current shifts and tilt-axis
    angle, re-projects it with the same geometry but zero shifts (so the re-projection is
    the ideal image of the reconstructed object), and registers every measured image to
    its re-projection by sub-pixel cross-correlation: the registration is the image's new
    shift.
``joint`` (:func:`joint_refinement`)
    Alternates a SIRT reconstruction from the current parameters with steps on the
    acquisition parameters (shifts, tilt angles, tilt-axis angle; see
    :class:`~wedge.parameters.AcquisitionParameters`) with the volume held fixed,
    minimising Σ‖A(p) x − b‖²: damped Gauss–Newton per image (default) or Adam through
    the differentiable ``ray-3d`` model (:mod:`wedge.models`).
:func:`align`
    ``coarse_align`` → ``projection_matching`` → (optionally) ``joint_refinement``, one
    history across the stages.

Conventions (docs/conventions.md): images (n, Y, X); angles and α in degrees; shifts
(dx, dy) in pixels in the frame of the given images, meaning "the measured image is the
ideal projection translated by (+dx, +dy)", as :func:`wedge.reconstruct` reads them; image
centre (N − 1)/2. Projection matching registers in the axis frame (images rotated by −α)
and returns shifts as Z(α) s_axis, like the coarse stages.

Gauge freedoms. Projections cannot tell a shifted object from shifted images: a common
shift along the axis, and a shift x0 cos β + z0 sin β across it (axis frame), are an
object translation; a common offset of every tilt angle is a rotation of the object about
the tilt axis. :func:`joint_refinement` keeps the mean shift (both components) and the
mean tilt angle at their starting values after every step; projection matching leaves
these modes where the reconstructions put them (compare results after removing them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from .._backend import resolve_device
from ..models import shift_images
from ..parameters import AcquisitionParameters, check_refine
from ..tiltseries import TiltSeries
from ._joint import _PER_IMAGE, _axis_step, _fix_gauge, _gauss_newton_step, _geometry_forward
from .axis import _check_series, _edge_taper, _images
from .coarse import (
    AlignmentResult,
    _bandpass,
    _check_filter,
    _from_axis_frame,
    _peak,
    _to_axis_frame,
    coarse_align,
)

__all__ = ["align", "joint_refinement", "projection_matching", "register_shifts"]

#: parameters the ``ray-3d`` model is differentiable in (what joint refinement can refine)
_JOINT_REFINABLE = ("shifts", "tilt", "phi", "psi", "tilt_axis")


# ----------------------------------------------------------------------------- checks
def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")
    return int(value)


def _non_negative(value: Any, name: str) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}.")
    return v


def _check_single_axis(series: TiltSeries, what: str) -> None:
    _check_series(series, what)
    if series.euler is not None:
        raise ValueError(
            f"{what} works on single-axis series (tilt angles and a tilt-axis angle), but "
            "this series has Euler angles; align it before refining φ and ψ."
        )


def _rms(d: np.ndarray) -> float:
    d = np.asarray(d, dtype=np.float64).reshape(len(d), -1)
    return float(np.sqrt(np.mean(np.sum(d * d, 1))))


# ----------------------------------------------------------------------------- registration
def register_shifts(
    reference: torch.Tensor,
    measured: torch.Tensor,
    *,
    max_shift: float,
    window: torch.Tensor | None = None,
    band: torch.Tensor | None = None,
    refinements: int = 2,
) -> torch.Tensor:
    """Sub-pixel shift of each measured image against its reference, (n, 2) pixels.

    Both stacks (n, Y, X) are multiplied by ``window`` after removing their windowed mean,
    filtered by ``band`` (on the FFT grid), and cross-correlated; the peak within
    ``max_shift`` is located by a parabola through it and its neighbours, then refined
    ``refinements`` times by correlating again after moving the reference by the shift
    found (a Fourier phase ramp), which removes the parabola's bias.

    Parameters
    ----------
    reference, measured : tensor (n, Y, X)
    max_shift : float, pixels
        Largest shift searched (radius).
    window : tensor (Y, X), optional
        Edge taper; default none.
    band : tensor (Y, X), optional
        Filter on the FFT grid; default none.
    refinements : int

    Returns
    -------
    tensor (n, 2), float64
        (dx, dy) such that ``measured`` ≈ ``reference`` translated by (+dx, +dy).
    """
    ny, nx = reference.shape[-2:]
    dev = reference.device
    win = torch.ones((ny, nx), dtype=torch.float64, device=dev) if window is None else window

    def prepared(a: torch.Tensor) -> torch.Tensor:
        a = a.to(torch.float64)
        mean = (a * win).sum((1, 2), keepdim=True) / win.sum()
        spec = torch.fft.fft2((a - mean) * win)
        return spec if band is None else spec * band

    cross = prepared(measured) * prepared(reference).conj()
    d = _peak(torch.fft.ifft2(cross).real, max_shift)
    ky = torch.fft.fftfreq(ny, device=dev, dtype=torch.float64)[None, :, None]
    kx = torch.fft.fftfreq(nx, device=dev, dtype=torch.float64)[None, None, :]
    for _ in range(refinements):
        ramp = torch.exp(2j * math.pi * (kx * d[:, 0, None, None] + ky * d[:, 1, None, None]))
        d = d + _peak(torch.fft.ifft2(cross * ramp).real, 1.5)
    return d


# ----------------------------------------------------------------------------- matching
def _keep_gauge(new: np.ndarray, start: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``new`` (axis frame, (n, 2) pixels) less the object translation it made from
    ``start``: the least-squares a cos β + b sin β of the change across the axis, the mean
    change along it."""
    d = new - start
    design = np.stack([np.cos(beta), np.sin(beta)], 1)
    coef, *_ = np.linalg.lstsq(design, d[:, 0], rcond=None)
    out = new.copy()
    out[:, 0] -= design @ coef
    out[:, 1] -= d[:, 1].mean()
    return out


def projection_matching(
    series: TiltSeries,
    *,
    rounds: int = 3,
    method: str = "sirt",
    iterations: int = 30,
    max_shift: float | None = None,
    tol: float = 0.02,
    thickness: int | None = None,
    highpass: float = 0.0,
    lowpass: float = 0.25,
    lowpass_sigma: float = 0.05,
    device: str | torch.device | None = None,
    **options: Any,
) -> AlignmentResult:
    """Refine the shifts by registering each image to a re-projection of the reconstruction.

    Every round: reconstruct with ``method`` from the series' current shifts and tilt-axis
    angle α (:func:`wedge.reconstruct`); re-project the volume with the ``ray`` model at
    the same angles, α = 0 and zero shifts, i.e. in the axis frame (the measured images
    are rotated by −α once, bilinearly); register each measured image
    against its re-projection moved by the image's current shift (Fourier phase ramp), both
    under the same edge taper (a tenth of the image) and band-pass as
    :func:`~wedge.align.coarse.xcorr_shifts` (:func:`register_shifts`); current shift plus
    registration is the image's new shift (axis frame, rotated back by Z(α)). Moving the
    re-projection first keeps the taper at the same place of the object in both images,
    so the true shifts are a fixed point (a fixed window on the unmoved re-projection
    biased the shifts towards zero: docs/alignment.md, "Validation"). Stops after
    ``rounds`` rounds, or earlier when a round changes the shifts by less than ``tol``
    pixels RMS.

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2, with their current shifts (None: zeros)
        and α (held fixed).
    rounds : int
        Most rounds (≥ 1).
    method : str
        A registered reconstruction method (:func:`wedge.list_methods`).
    iterations : int
        Iterations of each reconstruction.
    max_shift : float, pixels, optional
        Largest change of a shift searched in one round; default a quarter of the smaller
        image side.
    tol : float, pixels
        Early stop when the RMS change of a round is below it.
    thickness : int, optional
        Z size of the reconstructions (default the image width).
    highpass, lowpass, lowpass_sigma : float, cycles/pixel
        Band-pass of the registration (Gaussian high-pass σ, pass-band edge, fall-off).
    device : str or torch.device, optional
    **options
        Passed to :func:`wedge.reconstruct` (the method's options).

    Returns
    -------
    AlignmentResult
        ``series`` with the refined shifts (its images untouched); ``history`` one entry
        per round: ``stage`` "match", ``round``, ``shift_change_rms`` (pixels),
        ``r_factor`` (the round's reconstruction's final R-factor, before its shifts were
        updated).

    Raises
    ------
    ValueError
        Fewer than two tilts, a focal series, Euler angles, bad rounds/iterations/filter,
        or what :func:`wedge.reconstruct` refuses.
    """
    from ..api import reconstruct
    from ..preprocess import rotate_images
    from ..projectors import make_projector

    _check_single_axis(series, "projection_matching")
    rounds = _positive_int(rounds, "rounds")
    iterations = _positive_int(iterations, "iterations")
    tol = _non_negative(tol, "tol")
    _check_filter(highpass, lowpass, lowpass_sigma)
    n, ny, nx = series.images.shape
    if max_shift is None:
        max_shift = min(ny, nx) / 4
    if not (math.isfinite(float(max_shift)) and max_shift > 0):
        raise ValueError(f"max_shift must be a positive number of pixels, got {max_shift!r}.")
    dev = resolve_device(device)
    alpha = float(series.tilt_axis_angle)
    shifts = np.zeros((n, 2)) if series.shifts is None else series.shifts.astype(np.float64)
    meas = _images(series, dev)
    window = _edge_taper(ny, nx, max(ny, nx) / 10, dev)
    if alpha:
        meas = rotate_images(meas, alpha)
        window = rotate_images(window[None], alpha)[0]
    band = _bandpass(ny, nx, highpass, lowpass, lowpass_sigma, dev)
    start_axis = _to_axis_frame(shifts, alpha)
    b = np.deg2rad(series.angles)
    history: list[dict[str, Any]] = []
    for rnd in range(1, rounds + 1):
        cur = series.replace(shifts=shifts, tilt_axis_angle=alpha)
        rec = reconstruct(
            cur,
            method,
            iterations=iterations,
            thickness=thickness,
            device=dev,
            progress=False,
            **options,
        )
        r_f = float(rec.history[-1]["r_factor"])
        geom = rec.geometry.replace(shifts=None, tilt_axis_angle=0.0).to(dev)
        with torch.no_grad():
            vol = torch.as_tensor(rec.volume, device=dev)
            ideal = make_projector(geom, "ray").forward(vol)
        # Register against the re-projection moved by the current shifts (a Fourier phase
        # ramp), so that the window multiplies both images at the same place of the object:
        # windowing the unmoved re-projection and the measured image with one fixed window
        # pulls the peak towards zero total shift (the window's own edges, which cut an
        # object that fills the frame, correlate best unmoved), so the true shifts were
        # not a fixed point. The registration is now the residual, added to the current.
        cur_axis = torch.as_tensor(_to_axis_frame(shifts, alpha), device=dev)
        s_axis = cur_axis + register_shifts(
            shift_images(ideal.double(), cur_axis),
            meas,
            max_shift=float(max_shift),
            window=window,
            band=band,
        )
        new = _from_axis_frame(_keep_gauge(s_axis.cpu().numpy(), start_axis, b), alpha)
        change = _rms(new - shifts)
        shifts = new
        history.append(
            {
                "stage": "match",
                "round": rnd,
                "shift_change_rms": change,
                "r_factor": r_f,
            }
        )
        if change < tol:
            break
    out = series.with_step(
        f"projection matching ({len(history)} rounds, {method} {iterations} it.): last shift "
        f"change {history[-1]['shift_change_rms']:.3f} px RMS",
        shifts=shifts,
        tilt_axis_angle=alpha,
    )
    return AlignmentResult(series=out, shifts=shifts.copy(), tilt_axis_angle=alpha, history=history)


# ----------------------------------------------------------------------------- joint
def joint_refinement(
    series: TiltSeries,
    *,
    refine: Iterable[str] | str = ("shifts", "tilt", "tilt_axis"),
    rounds: int = 6,
    iterations: int = 100,
    steps: int | None = None,
    solver: str = "gauss-newton",
    warm_start: bool = True,
    learning_rates: Mapping[str, float] | None = None,
    decay: float = 0.7,
    tol: float = 0.005,
    thickness: int | None = None,
    ray_step: float = 0.5,
    device: str | torch.device | None = None,
) -> AlignmentResult:
    """Refine shifts, tilt angles and the tilt-axis angle jointly with the volume.

    Alternates, ``rounds`` times: (a) SIRT (``iterations``) from the current parameters;
    (b) ``steps`` steps on the refined parameters with that volume fixed, minimising
    Σᵢ‖Aᵢ(p) x − bᵢ‖². ``solver="gauss-newton"`` (default): with the volume fixed the misfit
    is a sum of independent per-image terms, so each image's (θ, φ, ψ, dx, dy) gets its own
    damped Gauss–Newton (Levenberg–Marquardt) step, from central-difference derivatives of
    the ``ray`` projector's images (the fast single-axis projector when φ = ψ = 0), kept
    only where it lowers that image's misfit; α gets a scalar step of the same kind. This
    scales every parameter by its own curvature, which Adam's common step size does not.
    ``solver="adam"``: Adam steps through the differentiable ``ray-3d`` model
    (:func:`wedge.models.get_model`, trilinear sampling every ``ray_step`` voxels), with
    ``learning_rates`` shrinking by ``decay`` each round. After every step the gauge is
    fixed: the mean shift (dx and dy) and the mean tilt angle are put back at their
    starting values (a common shift is an object translation, a common tilt offset an
    object rotation about the axis; neither is measurable). Stops early when a round moves
    no tilt angle by more than ``tol`` degrees RMS and no shift by more than 10 × ``tol``
    pixels RMS.

    The reconstruction must be close to converged: an under-converged volume "absorbs"
    the pose errors and holds the tilts near their starting values (docs/alignment.md:
    30 SIRT iterations per round leave 0.15° on the 32³ study case, 100 reach 0.08°).

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2, with starting shifts (None: zeros),
        tilt angles and α.
    refine : iterable of str
        Names from ``("shifts", "tilt", "phi", "psi", "tilt_axis")``.
    rounds : int
    iterations : int
        SIRT iterations per round.
    steps : int, optional
        Solver steps per round; default 5 (Gauss–Newton) or 30 (Adam).
    solver : {"gauss-newton", "adam"}
    warm_start : bool
        Start each round's SIRT from the previous round's volume (else from zero).
    learning_rates : mapping, optional
        Adam only: step sizes for ``"shifts"`` (pixels, default 0.05), ``"angles"`` (tilt, φ, ψ;
        degrees, default 0.05) and ``"tilt_axis"`` (degrees, default 0.02).
    decay : float
        Factor on the learning rates after each round, in (0, 1].
    tol : float, degrees
    thickness : int, optional
        Z size of the volume (default the image width).
    ray_step : float, voxels
    device : str or torch.device, optional

    Returns
    -------
    AlignmentResult
        ``series`` with the refined shifts, angles (Euler angles when φ or ψ moved) and α;
        ``history`` one entry per round: ``stage`` "joint", ``round``, ``r_factor`` (the
        round's SIRT), ``loss`` (the relative misfit after the steps), ``shift_change_rms``
        (pixels), ``tilt_change_rms`` (degrees), ``tilt_axis_angle``.

    Raises
    ------
    ValueError
        Fewer than two tilts, a focal series, Euler angles in the input, a name that is
        not refinable here, an unknown solver, bad counts or rates.
    """
    from ..api import reconstruct
    from ..models import get_model

    _check_single_axis(series, "joint_refinement")
    names = check_refine(refine, series)
    bad = [r for r in names if r not in _JOINT_REFINABLE]
    if bad or not names:
        raise ValueError(
            f"joint_refinement refines some of {', '.join(_JOINT_REFINABLE)} (the ray-3d "
            f"model's parameters), got {tuple(names)!r}."
        )
    rounds = _positive_int(rounds, "rounds")
    iterations = _positive_int(iterations, "iterations")
    if solver not in ("gauss-newton", "adam"):
        raise ValueError(f"solver must be 'gauss-newton' or 'adam', got {solver!r}.")
    steps = _positive_int(
        (5 if solver == "gauss-newton" else 30) if steps is None else steps, "steps"
    )
    if not (0 < float(decay) <= 1):
        raise ValueError(f"decay must be in (0, 1], got {decay!r}.")
    tol = _non_negative(tol, "tol")
    lr = {"shifts": 0.05, "angles": 0.05, "tilt_axis": 0.02}
    unknown = set(learning_rates or {}) - set(lr)
    if unknown:
        raise ValueError(f"learning_rates takes keys {sorted(lr)}, got {sorted(unknown)}.")
    lr.update(
        {k: _non_negative(v, f"learning_rates[{k!r}]") for k, v in (learning_rates or {}).items()}
    )
    dev = resolve_device(device)
    n, ny, nx = series.images.shape
    b = torch.as_tensor(np.asarray(series.images, dtype=np.float32), device=dev)
    # With α held fixed, work in the axis frame: the images rotated by −α once (as
    # wedge.reconstruct does), their shifts by Z(−α), so that every projection is the fast
    # single-axis one instead of the general ray-3d path (~20× slower at 256²). The misfit
    # is taken only where the rotated images hold data (not their empty corners).
    frame = float(series.tilt_axis_angle) if "tilt_axis" not in names else 0.0
    work, mask = series, None
    if frame:
        from ..preprocess import rotate_images, rotate_shifts

        b = rotate_images(b, frame)
        mask = rotate_images(torch.ones((1, ny, nx), device=dev), frame)[0] > 1 - 1e-4
        b = b * mask
        start = np.zeros((n, 2)) if series.shifts is None else series.shifts
        work = series.replace(
            images=b.cpu().numpy(), shifts=rotate_shifts(start, frame), tilt_axis_angle=0.0
        )
    scale = float((b.double() ** 2).sum()) or 1.0
    model = get_model("ray-3d")
    settings = {"detector_shape": (ny, nx), "ray_step": float(ray_step)}
    p = AcquisitionParameters(work, names, dev)
    shift_mean = p.shifts.detach().mean(0).clone()
    tilt_mean = p.tilt.detach().mean().clone()
    groups = []
    for name in names:
        key = "angles" if name in ("tilt", "phi", "psi") else name
        groups.append({"params": [getattr(p, name)], "lr": lr[key]})
    optim = torch.optim.Adam(groups)
    per_image = [name for name in names if name in _PER_IMAGE]
    bd = b.double()
    damping = torch.full((n,), 1e-3, dtype=torch.float64, device=dev)
    axis_damping = [1e-3]
    history: list[dict[str, Any]] = []
    x0 = None
    for rnd in range(1, rounds + 1):
        cur = p.to_series(work)
        rec = reconstruct(
            cur,
            "sirt",
            iterations=iterations,
            thickness=thickness,
            device=dev,
            progress=False,
            x0=x0,
        )
        x0 = rec.volume if warm_start else None
        x = torch.as_tensor(rec.volume, device=dev)
        forward = _geometry_forward(rec.geometry, x, p, mask)
        before = p.state_dict()
        for _ in range(steps):
            if solver == "gauss-newton":
                if per_image:
                    _gauss_newton_step(forward, p, bd, per_image, damping)
                if "tilt_axis" in names:
                    _axis_step(forward, p, bd, axis_damping)
            else:
                optim.zero_grad()
                pred = model.images(x, p, settings)
                pred = pred if mask is None else pred * mask
                loss = ((pred - b).double() ** 2).sum() / scale
                loss.backward()
                optim.step()
            _fix_gauge(p, shift_mean, tilt_mean)
        with torch.no_grad():
            final = float(((forward() - bd) ** 2).sum() / scale)
        after = p.state_dict()
        d_shift = _rms((after["shifts"] - before["shifts"]).cpu().numpy())
        d_tilt = float(torch.sqrt(torch.mean((after["tilt"] - before["tilt"]) ** 2)))
        history.append(
            {
                "stage": "joint",
                "round": rnd,
                "r_factor": float(rec.history[-1]["r_factor"]),
                "loss": final,
                "shift_change_rms": d_shift,
                "tilt_change_rms": d_tilt,
                "tilt_axis_angle": float(after["tilt_axis"]),
            }
        )
        for g in optim.param_groups:
            g["lr"] *= float(decay)
        if d_tilt < tol and d_shift < 10 * tol:
            break
    out = p.to_series(series)
    shifts = p.shifts.detach().cpu().numpy().copy()
    alpha = float(p.tilt_axis.detach())
    if frame:  # back from the axis frame
        from ..preprocess import rotate_shifts

        shifts, alpha = rotate_shifts(shifts, -frame), frame
    out = out.with_step(
        f"joint refinement of {', '.join(names)} ({len(history)} rounds, ray-3d): misfit "
        f"{history[-1]['loss']:.4g}",
        shifts=shifts,
        tilt_axis_angle=alpha,
    )
    return AlignmentResult(series=out, shifts=shifts, tilt_axis_angle=alpha, history=history)


# ----------------------------------------------------------------------------- driver
def align(
    series: TiltSeries,
    *,
    coarse: bool = True,
    match_rounds: int = 3,
    joint: bool = False,
    coarse_options: Mapping[str, Any] | None = None,
    match_options: Mapping[str, Any] | None = None,
    joint_options: Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> AlignmentResult:
    """Coarse alignment, projection matching and (optionally) joint refinement, in a row.

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2.
    coarse : bool
        Run :func:`~wedge.align.coarse.coarse_align` (tilt-axis angle and shifts) first.
    match_rounds : int
        Rounds of :func:`projection_matching` (0 skips it).
    joint : bool
        Finish with :func:`joint_refinement`.
    coarse_options, match_options, joint_options : mapping, optional
        Keyword arguments of each stage.
    device : str or torch.device, optional

    Returns
    -------
    AlignmentResult
        ``series`` ready for :func:`wedge.reconstruct`; ``history`` the stages' entries in
        order (``stage`` "axis", "xcorr", "com", "match", "joint").

    Raises
    ------
    ValueError
        Nothing to do, or what the stages refuse.
    """
    _check_single_axis(series, "align")
    match_rounds = _positive_int(match_rounds, "match_rounds", minimum=0)
    if coarse and (coarse_options or {}).get("subsets") is not None and (match_rounds or joint):
        raise ValueError(
            "projection matching and joint refinement need one tilt axis for every image, "
            "but subsets give each acquisition subset its own: set match_rounds=0 and "
            "joint=False, or leave out subsets."
        )
    if not (coarse or match_rounds or joint):
        raise ValueError("align has nothing to do: set coarse, match_rounds ≥ 1 or joint.")
    history: list[dict[str, Any]] = []
    cur = series
    if coarse:
        res = coarse_align(cur, device=device, **dict(coarse_options or {}))
        cur, history = res.series, history + res.history
    if match_rounds:
        opts = {"rounds": match_rounds, **dict(match_options or {})}
        res = projection_matching(cur, device=device, **opts)
        cur, history = res.series, history + res.history
    if joint:
        res = joint_refinement(cur, device=device, **dict(joint_options or {}))
        cur, history = res.series, history + res.history
    shifts = np.zeros((cur.n_tilts, 2)) if cur.shifts is None else cur.shifts.copy()
    return AlignmentResult(
        series=cur, shifts=shifts, tilt_axis_angle=float(cur.tilt_axis_angle), history=history
    )
