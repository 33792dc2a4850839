"""In-plane tilt-axis angle from the data alone, by the common line of single-axis tilt series.

In a single-axis tilt series every projection contains the same projection of the object
onto the tilt axis: the profile along the axis (the sum across it) is the same at every
tilt. In Fourier space (central-slice theorem) the 2D spectra of all projections share
one central line, the one along the tilt axis. Comparing the *magnitudes* of the spectra
along a candidate line makes the test blind to the unknown per-image shifts (a shift only
changes phases), so the axis can be found before any translational alignment.

For each candidate angle α the exact Fourier transform of each (background-subtracted)
image's projection onto the axis direction is evaluated at frequencies within a band (a
matrix product over the pixels: no resampling of the images and no interpolation between
Fourier samples, both of which made the profiles of different tilts disagree by more than
the signal in trials, biasing α by up to 0.5°). Its magnitude, weighted by the frequency
(a crude whitening) and normalised to unit length, is compared across tilts: the score is
the mean squared distance of these spectra from their mean, and the common line minimises
it. The search is a grid over a half-turn, then finer grids around the best, ending in a
parabola through the best three points.

The test assumes that the images hold the projection of the object on a flat background
(each image's border median is subtracted): an isolated particle or needle, or a region
whose features stay in view at every tilt. The images are tapered to zero over the outer
10% of their side, so that an object crossing the edge (the needle of the shared data)
does not bring a sharp cut, fixed in the image while the object moves, into every
profile; without the taper the needle's axis was missed by 30°.

α and α + 180° give the same line: the data cannot tell them apart (the series at α + 180°
is that of the object inverted through the centre, a mirror image, or equally of the
object at α with every tilt angle negated; projections cannot fix the handedness). The estimate
is returned within ±90° of a reference angle, by default the series' current
``tilt_axis_angle``; the sign of a ±90° axis (e.g. a needle along image X) must come
from the microscope.

Conventions: images (n, Y, X); α in degrees counter-clockwise from image Y (IMOD's
rotation angle), as :func:`wedge.preprocess.rotate_images` undoes it: a tilt axis at α
runs along the image direction (x, y) = (−sin α, cos α), with x the column and y the row
index.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .._backend import resolve_device
from ..tiltseries import TiltSeries

__all__ = ["common_line_score", "estimate_tilt_axis"]


# ----------------------------------------------------------------------------- validation
def _check_series(series: Any, what: str, min_tilts: int = 2) -> None:
    """Refuse what the coarse aligners cannot handle, with one sentence each."""
    if not isinstance(series, TiltSeries):
        raise TypeError(f"{what} needs a wedge.TiltSeries (see wedge.read_tiltseries).")
    if series.is_focal_series:
        raise ValueError(
            f"{what} works on projections (n, Y, X), but the series holds a focal series "
            f"{series.shape}; average each tilt's focal series first."
        )
    if series.n_tilts < min_tilts:
        raise ValueError(
            f"{what} needs at least {min_tilts} tilts to compare, got {series.n_tilts}; "
            "give the whole tilt series."
        )
    if series.euler is not None and np.any(series.euler[:, [0, 2]]):
        raise ValueError(
            f"{what} assumes a single-axis tilt series, but the series has non-zero Euler "
            "angles φ or ψ; align it with wedge.align.refine_angles instead."
        )
    flat = series.images.reshape(series.n_tilts, -1)
    const = np.flatnonzero(flat.max(axis=1) == flat.min(axis=1))
    if const.size:
        k = int(const[0])
        raise ValueError(
            f"image {k} (tilt {series.angles[k]:g}°) is constant (every pixel is "
            f"{flat[k, 0]:g}), so it holds nothing to align; remove it from the series "
            f"({const.size} constant image(s) in all)."
        )


def _images(series: TiltSeries, device: torch.device) -> torch.Tensor:
    """The images as a float64 tensor (a copy: the series is never modified)."""
    return torch.as_tensor(np.array(series.images, dtype=np.float64), device=device)


def _edge_taper(ny: int, nx: int, width: float, device: torch.device) -> torch.Tensor:
    """(Y, X) window: 1 inside, a raised-cosine fall to 0 over ``width`` pixels at each edge."""

    def ramp(n: int) -> torch.Tensor:
        i = torch.arange(n, device=device, dtype=torch.float64)
        d = torch.minimum(i, n - 1 - i) / max(width, 1.0)
        return 0.5 - 0.5 * torch.cos(math.pi * d.clamp(0, 1))

    return ramp(ny)[:, None] * ramp(nx)[None, :]


def _border_median(images: torch.Tensor) -> torch.Tensor:
    """Median of each image's outermost rows and columns, (n, 1, 1): the background level of
    an isolated object."""
    border = torch.cat(
        [images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], dim=1
    )
    return border.median(dim=1).values[:, None, None]


# ----------------------------------------------------------------------------- the score
class _Profiles:
    """Background-subtracted images, ready to be projected onto candidate axis directions.

    Images larger than ``max_size`` are block-averaged first (the same linear filter for
    every tilt, so it cannot make them disagree); coordinates stay in original pixels.
    """

    def __init__(self, images: torch.Tensor, band: tuple[float, float], max_size: int = 128):
        n, ny, nx = images.shape
        dev = images.device
        b = max(1, math.ceil(max(ny, nx) / max_size))
        taper = _edge_taper(ny, nx, max(ny, nx) / 10, dev)
        img = (images - _border_median(images)) * taper
        if b > 1:
            ny, nx = (ny // b) * b, (nx // b) * b
            img = img[:, :ny, :nx].reshape(n, ny // b, b, nx // b, b).mean((2, 4))
        self.values = img.reshape(n, -1)
        # centres of the (binned) pixels relative to the image centre, original pixels
        y = torch.arange(ny // b, device=dev, dtype=torch.float64) * b + (b - 1) / 2
        x = torch.arange(nx // b, device=dev, dtype=torch.float64) * b + (b - 1) / 2
        y, x = y - (images.shape[1] - 1) / 2, x - (images.shape[2] - 1) / 2
        self.y, self.x = (t.reshape(-1) for t in torch.meshgrid(y, x, indexing="ij"))
        # frequencies: spacing half the inverse of the longest projection (the diagonal)
        hi = min(band[1], 0.4 / b)
        step = 0.5 / math.hypot(ny, nx)
        self.f = torch.arange(band[0], hi + step / 2, step, device=dev, dtype=torch.float64)
        if self.f.numel() < 3:
            raise ValueError(
                f"band {band!r} cycles/pixel holds fewer than 3 frequencies of "
                f"{images.shape[1]}×{images.shape[2]} images (binned by {b}); widen it."
            )

    def at(self, alpha: float) -> torch.Tensor:
        """Unit-norm whitened magnitude spectra (n, n_f) of the projections of the images
        onto the axis direction (−sin α, cos α), α in degrees."""
        a = math.radians(alpha)
        t = -math.sin(a) * self.x + math.cos(a) * self.y  # coordinate along the axis
        phase = (2 * math.pi) * t[:, None] * self.f[None, :]
        re = self.values @ torch.cos(phase)  # exact Fourier transform of the projection,
        im = self.values @ torch.sin(phase)  # i.e. the 2D spectrum along the line
        spec = torch.sqrt(re**2 + im**2) * self.f  # whitened
        return spec / torch.linalg.vector_norm(spec, dim=-1, keepdim=True).clamp_min(1e-300)

    def score(self, alphas: np.ndarray) -> np.ndarray:
        """Mean squared distance of each tilt's profile from the mean profile, per α."""
        out = []
        for a in np.asarray(alphas, dtype=np.float64).reshape(-1):  # a loop over candidates
            p = self.at(float(a))
            out.append(float(((p - p.mean(0, keepdim=True)) ** 2).sum(-1).mean()))
        return np.asarray(out)


def _check_band(band: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(b) for b in band)
    if not (0 < lo < hi <= 0.5):
        raise ValueError(
            f"band must be (low, high) spatial frequencies with 0 < low < high ≤ 0.5 "
            f"cycles/pixel, got {band!r}."
        )
    return lo, hi


def common_line_score(
    series: TiltSeries,
    angles: Any,
    *,
    band: tuple[float, float] = (0.01, 0.25),
    device: str | torch.device | None = None,
) -> np.ndarray:
    """How far the tilts disagree along candidate tilt axes (lower is more consistent).

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2; shifts are irrelevant (magnitudes only).
    angles : array-like, degrees
        Candidate in-plane tilt-axis angles α (counter-clockwise from image Y).
    band : (float, float), cycles/pixel
        Spatial frequencies compared along the line.
    device : str or torch.device, optional

    Returns
    -------
    ndarray, same length as ``angles``
        Mean squared distance (dimensionless, in [0, 1]) of each tilt's unit-norm whitened
        spectral-magnitude profile along the line from the mean profile. Periodic in α
        with period 180°.
    """
    _check_series(series, "common_line_score")
    band = _check_band(band)
    dev = resolve_device(device)
    a = np.asarray(angles, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError("the candidate angles contain NaN or Inf.")
    return _Profiles(_images(series, dev), band).score(a)


def estimate_tilt_axis(
    series: TiltSeries,
    *,
    near: float | None = None,
    band: tuple[float, float] = (0.01, 0.25),
    step: float = 1.0,
    precision: float = 0.1,
    max_size: int = 128,
    device: str | torch.device | None = None,
) -> float:
    """Estimate the in-plane tilt-axis angle α by the common-line test.

    Parameters
    ----------
    series : TiltSeries
        Single-axis projections (n, Y, X), n ≥ 2; the object should stay inside the images
        (an isolated object, or a slab whose features are shared by the tilts).
    near : float, degrees, optional
        Reference angle; the result lies in ``[near − 90°, near + 90°)`` because α and
        α + 180° cannot be told apart (see the module notes). Default: the series'
        ``tilt_axis_angle``.
    band : (float, float), cycles/pixel
        Spatial frequencies compared along the line.
    step : float, degrees
        Grid step of the coarse search over the half-turn (on images block-averaged to at
        most ``max_size / 2`` pixels). The dip of the score is a few degrees wide (±2° on
        the needle data), so keep it at 1° or below.
    precision : float, degrees
        Step of the finest grid (each finer grid is 10 times finer, over ±1 step of the
        previous one); a parabola through the best three points of the finest grid gives
        the result.
    max_size : int, pixels
        Images larger than this are block-averaged (by a whole factor) for the fine search;
        16 to 256.
    device : str or torch.device, optional

    Returns
    -------
    float
        α in degrees, counter-clockwise from image Y (IMOD's rotation angle).

    Raises
    ------
    ValueError
        Fewer than two tilts, a constant image, a focal series, Euler angles, bad band or
        steps.
    """
    _check_series(series, "estimate_tilt_axis")
    band = _check_band(band)
    if not (0 < precision <= step <= 30):
        raise ValueError(
            f"need 0 < precision ≤ step ≤ 30 degrees, got precision={precision}, step={step}."
        )
    centre = float(series.tilt_axis_angle if near is None else near)
    if not math.isfinite(centre):
        raise ValueError(f"near must be a finite angle in degrees, got {near!r}.")
    if isinstance(max_size, bool) or not 16 <= int(max_size) <= 256:
        raise ValueError(
            f"max_size must be a whole number of pixels in [16, 256] (memory grows as its "
            f"cube), got {max_size!r}."
        )
    dev = resolve_device(device)
    img = _images(series, dev)
    # coarse grid over the whole half-turn, periodic, so the best point always has neighbours
    grid = centre - 90 + step * np.arange(math.ceil(180 / step))
    best = float(grid[np.argmin(_Profiles(img, band, int(max_size) // 2).score(grid))])
    scores = _Profiles(img, band, int(max_size)).score
    h = step
    while h > precision * (1 + 1e-9):
        h_new = max(h / 10, precision)
        grid = best + h_new * np.arange(-math.ceil(h / h_new), math.ceil(h / h_new) + 1)
        best = float(grid[np.argmin(scores(grid))])
        h = h_new
    s = scores(best + h * np.array([-1.0, 0.0, 1.0]))
    den = s[0] - 2 * s[1] + s[2]
    if den > 0:
        best += float(np.clip(0.5 * (s[0] - s[2]) / den, -1, 1)) * h
    # fold into [centre − 90, centre + 90)
    return float((best - centre + 90) % 180 + centre - 90)
