"""Coarse alignment of a tilt series: tilt-axis angle, per-image shifts, axis offset.

Three stages, run in this order by :func:`coarse_align`:

``axis``
    The in-plane tilt-axis angle α from the common line of the projections
    (:func:`wedge.align.axis.estimate_tilt_axis`); blind to shifts, so it runs first.
``xcorr``
    Sequential cross-correlation with cosine stretching (the idea of IMOD's ``tiltxcorr``,
    :func:`xcorr_shifts`): neighbouring tilts are correlated from the tilt nearest 0°
    outwards and the relative shifts accumulated.
``com``
    Centre of mass (:func:`com_shifts`): for an isolated object on a zero background, the
    centre of mass of each projection is the projection of the object's 3D centre of mass.
    Alone it sets every shift; after ``xcorr`` it only adds the offset of the tilt axis
    from the image centre, which cross-correlation without stretching cannot see (with
    stretching it is measured already, and this adds a correction near zero).

Conventions (docs/conventions.md): images (n, Y, X); angles and α in degrees (α
counter-clockwise from image Y, IMOD's rotation angle); shifts (dx, dy) in pixels in the
frame of the given images (before any rotation by −α), meaning "the measured image is the
ideal projection translated by (+dx, +dy)", exactly as :func:`wedge.reconstruct` reads
them; image centre index (N − 1)/2. Internally the images (or their centres of mass) are
rotated by −α so that the tilt axis runs along Y ("axis frame"), where a point (x, y, z)
projects to (x cos β + z sin β, y); a shift s_axis found there is returned as Z(α) s_axis.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._backend import resolve_device
from ..preprocess.rotate import rotate_shifts
from ..tiltseries import TiltSeries
from .axis import _check_series, _edge_taper, _images, common_line_score, estimate_tilt_axis
from .frames import (
    _axis_angles,
    _check_subsets,
    _with_axes,
    centre_shifts,
    interleaved_subsets,
)

__all__ = [
    "AlignmentResult",
    "centre_shifts",
    "coarse_align",
    "com_shifts",
    "interleaved_subsets",
    "xcorr_shifts",
]  # centre_shifts and interleaved_subsets live in .frames

#: largest |tilt| at which cosine stretching is allowed (cos 80° = 0.17: a 6× stretch)
_MAX_STRETCH_TILT = 80.0


@dataclasses.dataclass
class AlignmentResult:
    """What :func:`coarse_align` found.

    Attributes
    ----------
    series : TiltSeries
        The input series with ``shifts`` and ``tilt_axis_angle`` set to the estimates (one
        provenance line added); its images are untouched.
    shifts : ndarray (n, 2), pixels
        (dx, dy) per image, in the frame of the input images (wedge's convention).
    tilt_axis_angle : float, degrees
        The axis angle α (with ``subsets``: the mean of the subsets' angles).
    history : list of dict
        One entry per stage run, in order: ``stage`` ("axis", "xcorr", "com"), and
        ``shift_change_rms`` (pixels: RMS over images of how much the stage moved the
        shifts), plus stage figures: ``tilt_axis_angle``, ``change_deg``, ``score`` (axis);
        ``x0``, ``z0`` (pixels, the object's fitted centre of mass in the axis frame) and
        ``axis_offset`` (pixels; after xcorr only) for com; with ``quality=True`` every
        entry, and a first one with stage "input", also holds ``r_factor``: the R-factor
        of a short SIRT reconstruction from the series as it stands after the stage.
    tilt_axis_angles : ndarray (n,), degrees, or None
        Per image, when :func:`coarse_align` estimated one axis per acquisition subset
        (``subsets``); ``series`` then carries them as Euler angles (φ = α of the image's
        subset, θ = tilt, ψ = 0) with ``tilt_axis_angle`` 0.
    """

    series: TiltSeries
    shifts: np.ndarray
    tilt_axis_angle: float
    history: list[dict[str, Any]]
    tilt_axis_angles: np.ndarray | None = None


# ----------------------------------------------------------------------------- helpers
def _to_axis_frame(shifts: np.ndarray, alpha: float) -> np.ndarray:
    """Z(−α) s: shifts of the given images as seen after rotating them by −α."""
    return rotate_shifts(shifts, alpha)


def _from_axis_frame(shifts: np.ndarray, alpha: float) -> np.ndarray:
    """Z(α) s: shifts found in the axis frame, expressed in the frame of the given images."""
    return _to_axis_frame(shifts, -alpha)


def _stretch_x(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch each image along X about its centre (N − 1)/2 by its factor: out(x) =
    in(x / f) in centred coordinates (bilinear; zero outside)."""
    m, ny, nx = images.shape
    dev, dt = images.device, images.dtype
    gy = (2 * torch.arange(ny, device=dev, dtype=dt) + 1) / ny - 1  # align_corners=False
    gx = (2 * torch.arange(nx, device=dev, dtype=dt) + 1) / nx - 1
    yy = gy[None, :, None].expand(m, ny, nx)
    xx = (gx[None, None, :] / factors.to(dt)[:, None, None]).expand(m, ny, nx)
    grid = torch.stack([xx, yy], dim=-1)
    out = F.grid_sample(
        images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out[:, 0]


def _bandpass(
    ny: int, nx: int, highpass: float, lowpass: float, lowpass_sigma: float, device: torch.device
) -> torch.Tensor:
    """(Y, X) filter on the FFT grid (spatial frequency k in cycles/pixel): a Gaussian
    high-pass 1 − exp(−k²/2σ₁²) times a low-pass that is 1 up to ``lowpass`` and falls as
    a Gaussian of width ``lowpass_sigma`` beyond (the shape of IMOD's filter options)."""
    fy = torch.fft.fftfreq(ny, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(nx, device=device, dtype=torch.float64)
    k = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    high = 1 - torch.exp(-(k**2) / (2 * highpass**2)) if highpass > 0 else torch.ones_like(k)
    low = torch.exp(-((k - lowpass).clamp_min(0) ** 2) / (2 * lowpass_sigma**2))
    return high * low


def _peak(c: torch.Tensor, radius: float) -> torch.Tensor:
    """(m, 2) position (x, y) in pixels of the maximum of each correlation (m, Y, X), with
    zero shift at index 0 (FFT order), searched within ``radius``; refined by a parabola
    through the peak and its two neighbours along each axis."""
    m, ny, nx = c.shape
    fy = torch.fft.fftfreq(ny, 1 / ny, device=c.device).to(c.dtype)
    fx = torch.fft.fftfreq(nx, 1 / nx, device=c.device).to(c.dtype)
    inside = fy[:, None] ** 2 + fx[None, :] ** 2 <= radius**2
    flat = torch.where(inside, c, torch.finfo(c.dtype).min).reshape(m, -1).argmax(1)
    iy, ix = flat // nx, flat % nx
    ar = torch.arange(m, device=c.device)

    def vertex(lo: torch.Tensor, mid: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        den = lo - 2 * mid + hi
        safe = torch.where(den < 0, den, -torch.ones_like(den))
        return torch.where(den < 0, 0.5 * (lo - hi) / safe, torch.zeros_like(den)).clamp(-0.5, 0.5)

    c0 = c[ar, iy, ix]
    dy = vertex(c[ar, (iy - 1) % ny, ix], c0, c[ar, (iy + 1) % ny, ix])
    dx = vertex(c[ar, iy, (ix - 1) % nx], c0, c[ar, iy, (ix + 1) % nx])
    return torch.stack([fx[ix] + dx, fy[iy] + dy], 1)


def _sequence(angles: np.ndarray) -> tuple[int, list[tuple[int, int]]]:
    """The reference tilt (nearest 0°) and the (reference, current) pairs from it outwards,
    in an order where every reference is reached before it is used."""
    order = np.argsort(angles, kind="stable")
    r = int(np.argmin(np.abs(angles[order])))
    pairs = [(int(order[i - 1]), int(order[i])) for i in range(r + 1, order.size)]
    pairs += [(int(order[i + 1]), int(order[i])) for i in range(r - 1, -1, -1)]
    return int(order[r]), pairs


def _check_filter(highpass: float, lowpass: float, lowpass_sigma: float) -> None:
    if not (0 <= highpass < lowpass <= 0.5 and lowpass_sigma > 0):
        raise ValueError(
            "the band-pass needs 0 ≤ highpass < lowpass ≤ 0.5 cycles/pixel and lowpass_sigma "
            f"> 0, got highpass={highpass}, lowpass={lowpass}, lowpass_sigma={lowpass_sigma}."
        )


# ----------------------------------------------------------------------------- xcorr
def xcorr_shifts(
    series: TiltSeries,
    *,
    tilt_axis_angle: float | None = None,
    stretch: bool = True,
    highpass: float = 0.03,
    lowpass: float = 0.25,
    lowpass_sigma: float = 0.05,
    max_shift: float | None = None,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Per-image shifts by sequential cross-correlation of neighbouring tilts.

    The tilts are taken in order of angle from the one nearest 0° outwards. Each image is
    correlated with its neighbour nearer 0° (the reference) after (in the axis frame, i.e.
    both rotated by −α): stretching it across the tilt axis by cos β_ref / cos β (so that
    the features of a slab at the centre plane line up: a point x of that plane projects
    to x cos β); both images are tapered at their edges, band-passed (the same filter),
    and cross-correlated; the peak is located
    to a fraction of a pixel by a parabola, then refined by correlating again after moving
    the image by the shift found (Fourier shift), twice. With d' the shift of the
    stretched image against the reference, the image's shift is (d'ₓ + d_ref,ₓ)/f,
    d'ᵧ + d_ref,ᵧ (f the stretch factor); shifts accumulate from the reference tilt.

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2. Its ``shifts`` are ignored (the images
        are measured afresh).
    tilt_axis_angle : float or array (n,), degrees, optional
        α, one for all images or one per image; default the series' own.
    stretch : bool
        Cosine stretching (for slabs and general specimens). Turn it off for a needle or
        pillar rotating about its own axis, whose projections do not widen as 1/cos β;
        it must be off when some |tilt| exceeds 80°. Without it the images are correlated
        as they are (not rotated), so α does not matter.
    highpass : float, cycles/pixel
        σ of the Gaussian high-pass (0 for none).
    lowpass, lowpass_sigma : float, cycles/pixel
        Pass-band edge and Gaussian fall-off width of the low-pass.
    max_shift : float, pixels, optional
        Largest shift between neighbouring images that is searched; default a quarter of
        the smaller image side.
    device : str or torch.device, optional

    Returns
    -------
    ndarray (n, 2), pixels
        (dx, dy) per image in the frame of the given images. The tilt nearest 0° is the
        reference: its shift is (0, 0), so the reconstructed object sits where it is in
        that image. Relative measurements fix the shifts only up to what leaves the
        projections consistent: along the axis a constant (a translation of the object
        along Y); across it a·cos β + b·sin β (a translation of the object in X and Z; the
        reference's own true shift and the depth of the correlated features end up there)
        and, without stretching, also a constant: the offset of the tilt axis from the
        image centre, which stretching about the image centre does measure (see
        :func:`coarse_align` with ``com=True`` otherwise). The mean is not removed: that
        would turn the a·cos β part into a spurious axis offset.

    Raises
    ------
    ValueError
        Fewer than two tilts, a constant image, a focal series, Euler angles, a bad
        filter, or stretching with tilts beyond ±80°.
    """
    _check_series(series, "xcorr_shifts")
    _check_filter(highpass, lowpass, lowpass_sigma)
    alpha = _axis_angles(
        series.tilt_axis_angle if tilt_axis_angle is None else tilt_axis_angle, series.n_tilts
    )
    angles = series.angles
    if stretch and np.max(np.abs(angles)) > _MAX_STRETCH_TILT:
        raise ValueError(
            f"cosine stretching is meaningless at a tilt of {np.max(np.abs(angles)):g}° "
            f"(beyond ±{_MAX_STRETCH_TILT:g}°); pass stretch=False (right for a needle or "
            "pillar)."
        )
    n, ny, nx = series.images.shape
    if max_shift is None:
        max_shift = min(ny, nx) / 4
    if not max_shift > 0:
        raise ValueError(f"max_shift must be a positive number of pixels, got {max_shift}.")
    dev = resolve_device(device)
    from ..preprocess import rotate_images

    img = _images(series, dev)
    window = _edge_taper(ny, nx, max(ny, nx) / 10, dev)
    frame = alpha if stretch else 0.0  # without stretching, no need to resample the images
    if np.any(frame != 0.0):
        img = rotate_images(img, frame)
        # the taper rotated with the images is also zero where no data came in
        window = rotate_images(window[None].expand(n, -1, -1), frame)
    else:
        window = window[None].expand(n, -1, -1)
    ref_idx, pairs = _sequence(angles)
    ri, ci = (np.array([p[k] for p in pairs]) for k in (0, 1))
    cos = np.cos(np.deg2rad(angles))
    f = cos[ri] / cos[ci] if stretch else np.ones(len(pairs))
    f_t = torch.as_tensor(f, device=dev, dtype=torch.float64)
    # one window per pair: the reference's taper times the current image's, stretched
    # (without stretching the images are not rotated and every taper is the same one)
    if stretch:
        cur = _stretch_x(img[ci], f_t)
        win = window[ri] * _stretch_x(window[ci], f_t)
    else:
        cur, win = img[ci], window[ri]

    def prepared(a: torch.Tensor) -> torch.Tensor:
        mean = (a * win).sum((1, 2), keepdim=True) / win.sum((1, 2), keepdim=True)
        return (a - mean) * win

    band = _bandpass(ny, nx, highpass, lowpass, lowpass_sigma, dev)
    fa = torch.fft.fft2(prepared(img[ri])) * band
    fb = torch.fft.fft2(prepared(cur)) * band
    cross = fb * fa.conj()  # its inverse FFT peaks at the shift of cur against ref
    ky = torch.fft.fftfreq(ny, device=dev, dtype=torch.float64)[None, :, None]
    kx = torch.fft.fftfreq(nx, device=dev, dtype=torch.float64)[None, None, :]
    d = _peak(torch.fft.ifft2(cross).real, max_shift)
    for _ in range(2):  # parabola bias vanishes as the residual shift goes to zero
        ramp = torch.exp(2j * math.pi * (kx * d[:, 0, None, None] + ky * d[:, 1, None, None]))
        d = d + _peak(torch.fft.ifft2(cross * ramp).real, 1.5)
    rel = d.cpu().numpy()
    out = np.zeros((n, 2))
    for (r, c), dd, fac in zip(pairs, rel, f, strict=True):  # a loop over tilts
        out[c, 0] = (dd[0] + out[r, 0]) / fac
        out[c, 1] = dd[1] + out[r, 1]
    out[ref_idx] = 0.0
    return _from_axis_frame(out, frame)


# ----------------------------------------------------------------------------- com
def _centres_of_mass(series: TiltSeries) -> np.ndarray:
    """(n, 2) centre of mass (x, y) of each image, pixels from the image centre, in the
    frame of the given images; refuses images not on a zero background."""
    img = np.asarray(series.images, dtype=np.float64)
    n, ny, nx = img.shape
    border = np.concatenate([img[:, 0], img[:, -1], img[:, 1:-1, 0], img[:, 1:-1, -1]], axis=1)
    level = np.median(border, axis=1)
    peak = np.max(np.abs(img), axis=(1, 2))
    bad = np.flatnonzero(np.abs(level) > 0.05 * peak)
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"the centre of mass needs images on a zero background, but image {k} (tilt "
            f"{series.angles[k]:g}°) has a border median of {level[k]:g} against a peak of "
            f"{peak[k]:g}; subtract the background first (e.g. each image's border median)."
        )
    mass = img.sum(axis=(1, 2))
    if np.any(mass <= 0):
        k = int(np.flatnonzero(mass <= 0)[0])
        raise ValueError(
            f"image {k} (tilt {series.angles[k]:g}°) sums to {mass[k]:g} ≤ 0, so it has no "
            "centre of mass; the object must be brighter than the background (invert "
            "bright-field images first)."
        )
    y = np.arange(ny) - (ny - 1) / 2
    x = np.arange(nx) - (nx - 1) / 2
    cx = np.einsum("nyx,x->n", img, x) / mass
    cy = np.einsum("nyx,y->n", img, y) / mass
    return np.stack([cx, cy], 1)


def _com_fit(
    com_axis: np.ndarray, angles: np.ndarray, offset: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares fit of x_com(β) = x0 cos β + z0 sin β (+ c when ``offset``); returns
    the coefficients and the residuals."""
    b = np.deg2rad(angles)
    cols = [np.cos(b), np.sin(b)] + ([np.ones_like(b)] if offset else [])
    design = np.stack(cols, 1)
    coef, *_ = np.linalg.lstsq(design, com_axis[:, 0], rcond=None)
    return coef, com_axis[:, 0] - design @ coef


def com_shifts(series: TiltSeries, *, tilt_axis_angle: float | None = None) -> np.ndarray:
    """Per-image shifts that put each projection's centre of mass where the object's 3D
    centre of mass projects.

    In the axis frame, the centre of mass of the projection at tilt β of an object whose
    centre of mass is (x0, y0, z0) is (x0 cos β + z0 sin β, y0) plus the image's shift. The
    x components are fitted by least squares over x0, z0 and the residuals are the X
    shifts (a shift common to all images, the offset of the tilt axis from the image
    centre, stays in them); along the axis the shifts are the deviations from the mean
    y. The centres of mass are computed in the given images and rotated by −α (no
    resampling).

    Parameters
    ----------
    series : TiltSeries
        Projections (n, Y, X), n ≥ 2, of an isolated object (particle, needle) that stays
        inside every image, on a zero background (subtract it first).
    tilt_axis_angle : float, degrees, optional
        α; default the series' own.

    Returns
    -------
    ndarray (n, 2), pixels
        (dx, dy) per image in the frame of the given images; their X component (axis
        frame) has no part along cos β or sin β, their Y component has zero mean.

    Raises
    ------
    ValueError
        Fewer than two tilts, a constant image, a background that is not zero (border
        median above 5% of the peak), an image that sums to ≤ 0.
    """
    _check_series(series, "com_shifts")
    alpha = float(series.tilt_axis_angle if tilt_axis_angle is None else tilt_axis_angle)
    com = _to_axis_frame(_centres_of_mass(series), alpha)
    _, res_x = _com_fit(com, series.angles, offset=False)
    out = np.stack([res_x, com[:, 1] - com[:, 1].mean()], 1)
    return _from_axis_frame(out, alpha)


# ----------------------------------------------------------------------------- driver
def _quick_r_factor(series: TiltSeries, iterations: int, device: Any) -> float:
    from ..api import reconstruct

    rec = reconstruct(series, "sirt", iterations=iterations, device=device, progress=False)
    return float(rec.history[-1]["r_factor"])


def coarse_align(
    series: TiltSeries,
    *,
    axis: bool = True,
    xcorr: bool = True,
    com: bool = False,
    stretch: bool = True,
    highpass: float = 0.03,
    lowpass: float = 0.25,
    lowpass_sigma: float = 0.05,
    max_shift: float | None = None,
    axis_band: tuple[float, float] = (0.01, 0.25),
    quality: bool = False,
    quality_iterations: int = 10,
    subsets: Any = None,
    centre: bool = True,
    device: str | torch.device | None = None,
) -> AlignmentResult:
    """Coarse alignment: tilt-axis angle, then shifts by cross-correlation and/or centre
    of mass.

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2.
    axis : bool
        Estimate α (:func:`~wedge.align.axis.estimate_tilt_axis`, returned within ±90° of
        the series' current ``tilt_axis_angle``: α and α + 180° cannot be told apart).
        Otherwise the series' α is used.
    xcorr : bool
        Shifts by sequential cross-correlation (:func:`xcorr_shifts`).
    com : bool
        Centre of mass (:func:`com_shifts`; isolated object on a zero background). With
        ``xcorr`` it adds only the axis offset, which cross-correlation without stretching
        leaves undetermined: the constant c (axis frame, across the axis) of a fit
        x_com(β) = x0 cos β + z0 sin β + c to the centres of mass of the images corrected by
        the xcorr shifts (computed from the centres of mass, not by resampling).
    stretch, highpass, lowpass, lowpass_sigma, max_shift
        Options of :func:`xcorr_shifts`.
    axis_band : (float, float), cycles/pixel
        Frequencies compared by the axis search.
    quality : bool
        Also record the R-factor of a ``quality_iterations``-iteration SIRT reconstruction
        before and after every stage (costs one reconstruction per stage).
    quality_iterations : int
    subsets : array (n,) of int, optional
        Acquisition subset of each image, for a series merged from several tilt series
        (interleaved: :func:`interleaved_subsets`; or a holder re-seated between halves).
        Each subset gets its own tilt-axis angle (``axis=True``; at least 3 tilts each),
        as the INR paper does for its interleaved AuPd series (§4.5). Shifts are measured
        over the whole series as usual: neighbours are taken in order of angle, not of
        acquisition, so a dose-symmetric or interleaved order needs nothing more.
    centre : bool
        After the shift stages, choose the object translation that the shifts cannot fix
        (:func:`centre_shifts`) so that the object sits in the middle of the images'
        common field of view, instead of where it is in the tilt nearest 0°: the volume
        box is finite, and with large drift the xcorr reference loses rows and columns
        at the box's edges (on the needle, SIRT R-factor 0.0644 → 0.0590, see
        docs/alignment.md).
    device : str or torch.device, optional

    Returns
    -------
    AlignmentResult
        Without ``xcorr`` and ``com`` the series' own shifts (zeros if none) are kept.
        With ``subsets`` whose axes differ, ``tilt_axis_angles`` holds them per image and
        the series carries them as Euler angles (φ = α, θ, ψ = 0), which
        :func:`wedge.reconstruct` takes through the general projector; projection
        matching needs one axis and refuses such a series.

    Raises
    ------
    ValueError
        Nothing to do (all stages off), or what the stages refuse.
    """
    _check_series(series, "coarse_align")
    if not (axis or xcorr or com):
        raise ValueError("coarse_align has nothing to do: set axis, xcorr or com to True.")
    if quality and (isinstance(quality_iterations, bool) or int(quality_iterations) < 1):
        raise ValueError(f"quality_iterations must be ≥ 1, got {quality_iterations!r}.")
    labels = _check_subsets(subsets, series)
    if labels is not None and not axis:
        raise ValueError("subsets only serve the per-subset axis estimate: set axis=True.")
    alpha: float | np.ndarray = float(series.tilt_axis_angle)
    shifts = np.zeros((series.n_tilts, 2)) if series.shifts is None else series.shifts.copy()
    history: list[dict[str, Any]] = []
    # centres of mass first: a background that is not zero is refused before any work
    centres = _centres_of_mass(series) if com else None

    def record(entry: dict[str, Any], old: np.ndarray) -> None:
        entry["shift_change_rms"] = float(np.sqrt(np.mean(np.sum((shifts - old) ** 2, 1))))
        if quality:
            now = _with_axes(series, shifts, alpha)
            entry["r_factor"] = _quick_r_factor(now, int(quality_iterations), device)
        history.append(entry)

    if quality:
        history.append(
            {"stage": "input", "r_factor": _quick_r_factor(series, quality_iterations, device)}
        )
    if axis and labels is None:
        old, before = shifts.copy(), float(alpha)
        alpha = estimate_tilt_axis(series, band=axis_band, device=device)
        score = float(common_line_score(series, [alpha], band=axis_band, device=device)[0])
        record(
            {
                "stage": "axis",
                "tilt_axis_angle": alpha,
                "change_deg": alpha - before,
                "score": score,
            },
            old,
        )
    elif axis:
        old, before = shifts.copy(), float(alpha)
        per_image = np.empty(series.n_tilts)
        entry: dict[str, Any] = {"stage": "axis"}
        for k in np.unique(labels):  # a loop over acquisition subsets
            idx = np.flatnonzero(labels == k)
            a_k = estimate_tilt_axis(series[idx], band=axis_band, near=before, device=device)
            per_image[idx] = a_k
            entry[f"tilt_axis_angle_{int(k)}"] = a_k
        alpha = _axis_angles(per_image, series.n_tilts)
        entry["tilt_axis_angle"] = float(np.mean(per_image))
        entry["change_deg"] = float(np.mean(per_image)) - before
        record(entry, old)
    if xcorr:
        old = shifts.copy()
        shifts = xcorr_shifts(
            series,
            tilt_axis_angle=alpha,
            stretch=stretch,
            highpass=highpass,
            lowpass=lowpass,
            lowpass_sigma=lowpass_sigma,
            max_shift=max_shift,
            device=device,
        )
        record({"stage": "xcorr"}, old)
    if com:
        old = shifts.copy()
        entry = {"stage": "com"}
        c_axis = _to_axis_frame(centres, alpha)
        if xcorr:
            s_axis = _to_axis_frame(shifts, alpha)
            coef, _ = _com_fit(c_axis - s_axis, series.angles, offset=True)
            s_axis[:, 0] += coef[2]
            shifts = _from_axis_frame(s_axis, alpha)
            entry["axis_offset"] = float(coef[2])
        else:
            coef, res_x = _com_fit(c_axis, series.angles, offset=False)
            out_axis = np.stack([res_x, c_axis[:, 1] - c_axis[:, 1].mean()], 1)
            shifts = _from_axis_frame(out_axis, alpha)
        entry["x0"], entry["z0"] = float(coef[0]), float(coef[1])
        record(entry, old)
    if centre and xcorr:
        old = shifts.copy()
        shifts = centre_shifts(shifts, series.angles, alpha)
        record({"stage": "centre"}, old)
    stages = [s for s, on in (("axis", axis), ("xcorr", xcorr), ("com", com)) if on]
    rms = float(np.sqrt(np.mean(np.sum(shifts**2, 1))))
    if isinstance(alpha, float):
        out = series.with_step(
            f"coarse alignment ({', '.join(stages)}): tilt-axis angle {alpha:.3f}°, shifts "
            f"RMS {rms:.2f} px",
            shifts=shifts,
            tilt_axis_angle=alpha,
        )
        return AlignmentResult(out, shifts.copy(), alpha, history)
    axes = ", ".join(f"{a:.3f}°" for a in np.unique(alpha))
    out = _with_axes(series, shifts, alpha).with_step(
        f"coarse alignment ({', '.join(stages)}): tilt-axis angles {axes} (per subset, as "
        f"Euler φ), shifts RMS {rms:.2f} px"
    )
    return AlignmentResult(out, shifts.copy(), float(np.mean(alpha)), history, alpha.copy())
