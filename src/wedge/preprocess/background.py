"""Background subtraction with a low-order bivariate Bernstein polynomial.

The INR tomography paper (Lim et al., quantEM, §4.5 and §4.6) removes the background of
each image with a bivariate Bernstein polynomial fitted to the image; it gives no degree.
Here the polynomial is fitted by least squares to the pixels *outside* the sample only,
so the sample does not pull the fit, and the degree defaults to 3 (a smooth bowl or ramp,
16 coefficients per image).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from ..tiltseries import TiltSeries
from ._common import (
    as_series_images,
    check_series,
    describe,
    flat_images,
    positive_float,
    positive_int,
)

__all__ = [
    "AutoMask",
    "background_mask",
    "bernstein_basis",
    "estimate_background",
    "subtract_background",
]

# A fit whose normal matrix is worse conditioned than this has too little or too
# degenerate background (e.g. a single row of pixels) to determine every coefficient.
_MAX_CONDITION = 1e10
# The normal matrix of a full 256² image has condition 1.2e3 at degree 3, 5.2e8 at 8 and
# 1.1e11 at 10 (measured): beyond 8 the fit is ill-posed even with every pixel.
MAX_DEGREE = 8


def _check_degree(degree: int) -> int:
    d = positive_int("degree", degree, minimum=0)
    if d > MAX_DEGREE:
        raise ValueError(
            f"a degree-{d} background is ill-conditioned; a background needs few terms, so use "
            f"a degree ≤ {MAX_DEGREE} (default 3)."
        )
    return d


def bernstein_basis(degree: int, n: int) -> np.ndarray:
    """The Bernstein polynomials of ``degree`` sampled on ``n`` pixels.

    ``B[p, i] = C(d, i) t_p^i (1 − t_p)^(d − i)`` with ``t_p = p / (n − 1)`` mapping pixel
    indices 0 … n−1 onto [0, 1] (``t = 0`` for ``n = 1``). Evaluated by the de Casteljau
    recurrence ``B_{i,r} = (1 − t) B_{i,r−1} + t B_{i−1,r−1}``, which stays accurate for
    any degree. The rows sum to 1.

    Parameters
    ----------
    degree : int ≥ 0
    n : int ≥ 1
        Number of pixels along the axis.

    Returns
    -------
    ndarray (n, degree + 1) float64
    """
    d = positive_int("degree", degree, minimum=0)
    n = positive_int("n", n)
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    basis = np.ones((n, 1))
    for _ in range(d):
        nxt = np.zeros((n, basis.shape[1] + 1))
        nxt[:, :-1] += (1 - t)[:, None] * basis
        nxt[:, 1:] += t[:, None] * basis
        basis = nxt
    return basis


@dataclasses.dataclass(frozen=True)
class AutoMask:
    """The rule that finds background pixels automatically, image by image.

    First classify the image itself by steps 2–4 (the sample of a HAADF image stands far
    above any background gradient), then repeat ``iterations`` times:

    1. Fit the Bernstein background to the current background pixels and subtract it
       (so a background gradient larger than the noise does not count as sample).
    2. Smooth the residual with a Gaussian of ``smooth`` pixels (standard deviation).
    3. Take the background level as the half-sample mode of the smoothed residual (Bickel &
       Frühwirth 2006: the densest level, so the background need not be the majority of
       the pixels, only its most common level), and its spread σ as 1.4826 × the median
       distance below the mode (above it for ``polarity="dark"``) — the side the sample
       does not reach.
    4. Sample = smoothed pixels more than ``threshold`` σ above the level (below it for
       ``"dark"``), grown by a disk of ``margin`` pixels to take in faint halos and the
       blurred edge; the background is every other pixel.

    The rule assumes the background is the most common level in each image and the sample
    lies on one side of it; otherwise give a mask.

    Parameters
    ----------
    smooth : float ≥ 0, pixels, default 2
    threshold : float > 0, robust standard deviations, default 3
    margin : int ≥ 0, pixels, default 4
    polarity : {"bright", "dark"}, default "bright"
        ``"bright"``: the sample is brighter than the background (HAADF/ADF-STEM);
        ``"dark"``: darker (bright-field TEM).
    iterations : int ≥ 1, default 2
    """

    smooth: float = 2.0
    threshold: float = 3.0
    margin: int = 4
    polarity: Literal["bright", "dark"] = "bright"
    iterations: int = 2

    def __post_init__(self) -> None:
        positive_float("AutoMask.smooth", self.smooth, allow_zero=True)
        positive_float("AutoMask.threshold", self.threshold)
        positive_int("AutoMask.margin", self.margin, minimum=0)
        positive_int("AutoMask.iterations", self.iterations)
        if self.polarity not in ("bright", "dark"):
            raise ValueError(
                f"AutoMask.polarity must be 'bright' (HAADF) or 'dark' (bright field), "
                f"got {self.polarity!r}."
            )

    def __str__(self) -> str:
        return (
            f"auto(smooth={self.smooth:g} px, threshold={self.threshold:g} sigma, "
            f"margin={self.margin} px, polarity={self.polarity}, iterations={self.iterations})"
        )


def _half_sample_mode(values: np.ndarray) -> np.ndarray:
    """Half-sample mode of each row of ``values`` (m, P): repeatedly keep the half of
    the sorted sample with the smallest range, down to two values, and average them."""
    x = np.sort(values, axis=1)
    m, size = x.shape
    lo = np.zeros((m, 1), dtype=np.int64)
    while size > 2:
        h = (size + 1) // 2
        starts = lo + np.arange(size - h + 1)[None]
        widths = np.take_along_axis(x, starts + h - 1, 1) - np.take_along_axis(x, starts, 1)
        lo = lo + np.argmin(widths, axis=1)[:, None]
        size = h
    return np.take_along_axis(x, lo + np.arange(size)[None], 1).mean(axis=1)


def _classify(images: np.ndarray, rule: AutoMask) -> np.ndarray:
    """Background (True) of each residual image in ``images`` (m, Y, X): steps 2–4."""
    m = images.shape[0]
    s = ndimage.gaussian_filter(images, (0, rule.smooth, rule.smooth)) if rule.smooth else images
    flat = s.reshape(m, -1)
    level = _half_sample_mode(flat)[:, None]
    sign = 1.0 if rule.polarity == "bright" else -1.0
    above = sign * (flat - level)  # > 0 towards the sample
    below = np.where(above <= 0, -above, np.nan)
    sigma = 1.4826 * np.nanmedian(below, axis=1, keepdims=True)
    sample = (above > rule.threshold * sigma).reshape(images.shape)
    if rule.margin:
        r = rule.margin
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = (yy**2 + xx**2 <= r * r)[None]
        sample = ndimage.binary_dilation(sample, structure=disk)
    return ~sample


def _fit(images: np.ndarray, mask: np.ndarray, degree: int) -> np.ndarray:
    """Least-squares Bernstein background of each image (m, Y, X) over its mask pixels.

    The model is ``b(y, x) = Σ_ij c_ij B_i(y) B_j(x)``; the normal equations are formed
    separably (the tensor-product basis is never built pixel by pixel) and solved per image
    in float64.
    """
    m, ny, nx = images.shape
    p = degree + 1
    by, bx = bernstein_basis(degree, ny), bernstein_basis(degree, nx)
    w = mask.astype(np.float64)
    counts = w.reshape(m, -1).sum(axis=1)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ValueError(
            f"the background mask removes every pixel of image(s) {empty.tolist()[:10]}, so "
            "there is nothing to fit the background to; give a mask with True on background "
            "pixels, or a smaller AutoMask margin/threshold."
        )
    bxx = (bx[:, :, None] * bx[:, None, :]).reshape(nx, p * p)  # (X, (b, e))
    byy = (by[:, :, None] * by[:, None, :]).reshape(ny, p * p)  # (Y, (a, c))
    t = w @ bxx  # (m, Y, (b, e))
    g = np.einsum("yq,myr->mqr", byy, t).reshape(m, p, p, p, p)  # (m, a, c, b, e)
    g = g.transpose(0, 1, 3, 2, 4).reshape(m, p * p, p * p)  # rows (a, b), cols (c, e)
    rhs = (by.T[None] @ (w * images) @ bx).reshape(m, p * p)
    cond = np.linalg.cond(g)
    bad = np.flatnonzero(~(cond < _MAX_CONDITION))
    if bad.size:
        raise ValueError(
            f"the background pixels of image(s) {bad.tolist()[:10]} ({int(counts[bad[0]])} "
            f"pixels in image {bad[0]}) cannot determine a degree-{degree} background (they "
            "do not spread over the image); lower the degree or give a larger mask."
        )
    coef = np.linalg.solve(g, rhs[..., None])[..., 0].reshape(m, p, p)
    return by[None] @ coef @ bx.T[None]


def _flat_mask(series: TiltSeries, mask: Any) -> np.ndarray:
    """A user mask as bool (m, Y, X) matching :func:`flat_images`."""
    arr = np.asarray(mask)
    if arr.dtype != bool:
        raise ValueError(
            f"mask must be a boolean array (True on background pixels), got dtype {arr.dtype}; "
            "build it with a comparison, e.g. images < level."
        )
    shape = series.images.shape
    ny, nx = series.image_shape
    allowed = [(ny, nx), shape[:1] + (ny, nx), shape]
    if arr.shape not in allowed:
        raise ValueError(
            f"mask has shape {arr.shape}; give one (Y, X) mask for every image or one per "
            f"image, i.e. one of {sorted(set(allowed))}."
        )
    if arr.ndim == 3 and series.is_focal_series:  # one mask per tilt, shared by its foci
        arr = arr[:, None]
    return np.broadcast_to(arr, shape).reshape(-1, ny, nx)


def _resolve_mask(series: TiltSeries, imgs: np.ndarray, degree: int, mask: Any) -> np.ndarray:
    if mask is None:
        mask = AutoMask()
    if isinstance(mask, AutoMask):
        found = _classify(imgs, mask)
        for _ in range(mask.iterations):
            found = _classify(imgs - _fit(imgs, found, degree), mask)
        return found
    return _flat_mask(series, mask)


def background_mask(
    series: TiltSeries, *, degree: int = 3, rule: AutoMask | None = None
) -> np.ndarray:
    """The background pixels that :class:`AutoMask` finds (True = background).

    Parameters
    ----------
    series : TiltSeries
    degree : int
        Degree of the intermediate background fits (step 1 of :class:`AutoMask`).
    rule : AutoMask, optional
        Defaults to ``AutoMask()``.

    Returns
    -------
    ndarray bool, the shape of ``series.images``
    """
    check_series(series, "background_mask")
    degree = _check_degree(degree)
    rule = AutoMask() if rule is None else rule
    if not isinstance(rule, AutoMask):
        raise TypeError(f"rule must be a wedge.preprocess.AutoMask, got {type(rule).__name__}.")
    imgs = flat_images(series)
    return _resolve_mask(series, imgs, degree, rule).reshape(series.images.shape)


def estimate_background(series: TiltSeries, *, degree: int = 3, mask: Any = None) -> np.ndarray:
    """The fitted Bernstein background of every image.

    Per image, ``b(y, x) = Σ_{i,j=0..d} c_ij B_{i,d}(y/(Y−1)) B_{j,d}(x/(X−1))`` with the
    coefficients ``c`` minimising ``Σ_{mask} (I − b)²`` (least squares over the background
    pixels only; :func:`bernstein_basis` defines B).

    Parameters
    ----------
    series : TiltSeries
    degree : int, 0 … 8, default 3
        Polynomial degree along each image axis ((d + 1)² coefficients per image).
    mask : AutoMask, bool array (Y, X), (n, Y, X) or the images' shape, optional
        True on the background pixels to fit. Default ``AutoMask()``.

    Returns
    -------
    ndarray float32, the shape of ``series.images``, in image units

    Raises
    ------
    ValueError
        A mask that is not boolean or of another shape, that removes every pixel of an
        image, or whose pixels cannot determine every coefficient.
    """
    check_series(series, "estimate_background")
    degree = _check_degree(degree)
    imgs = flat_images(series)
    bg = _fit(imgs, _resolve_mask(series, imgs, degree, mask), degree)
    return as_series_images(series, bg)


def subtract_background(series: TiltSeries, *, degree: int = 3, mask: Any = None) -> TiltSeries:
    """Subtract a least-squares bivariate Bernstein background from every image.

    ``I'(y, x) = I(y, x) − b(y, x)``, with ``b`` from :func:`estimate_background` fitted to
    the background pixels only (INR paper §4.5); afterwards the background averages 0 and
    the sample keeps its intensity above it. Works image by image, also on focal series.

    Parameters
    ----------
    series : TiltSeries
    degree : int, 0 … 8, default 3
    mask : AutoMask or bool array, optional
        True on background pixels: (Y, X) for all images, (n, Y, X) per tilt, or the
        images' full shape. Default ``AutoMask()`` (its rule documents itself).

    Returns
    -------
    TiltSeries
        Same geometry; provenance gains
        ``subtract_background(degree=…, mask=…, background_pixels=…%)``.

    Raises
    ------
    ValueError
        See :func:`estimate_background`.
    """
    check_series(series, "subtract_background")
    degree = _check_degree(degree)
    imgs = flat_images(series)
    flat_mask = _resolve_mask(series, imgs, degree, mask)
    bg = _fit(imgs, flat_mask, degree)
    if mask is None or isinstance(mask, AutoMask):
        how = str(mask or AutoMask())
    else:
        how = f"given {np.shape(mask)}"
    line = describe(
        "subtract_background",
        degree=degree,
        mask=how,
        background_pixels=f"{100 * flat_mask.mean():.1f}%",
    )
    return series.with_step(line, images=as_series_images(series, imgs - bg))
