"""Cropping a window out of every image, and tapering the image edges."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tiltseries import TiltSeries
from ._common import (
    as_series_images,
    check_series,
    describe,
    flat_images,
    positive_int,
    shape_pair,
    shifts_or_zeros,
)

__all__ = ["crop", "taper_edges"]


def _origin(series: TiltSeries, shape: tuple[int, int], origin: Any) -> tuple[int, int]:
    ny, nx = series.image_shape
    my, mx = shape
    if my > ny or mx > nx:
        raise ValueError(
            f"the crop shape {shape} is larger than the images {series.image_shape}; give a "
            "shape no larger than (Y, X)."
        )
    if origin is None:
        return (ny - my) // 2, (nx - mx) // 2
    try:
        items = tuple(origin)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise ValueError(f"origin must be a (y0, x0) pair of pixel indices, got {origin!r}.")
    y0 = positive_int("origin[0]", items[0], minimum=0)
    x0 = positive_int("origin[1]", items[1], minimum=0)
    if y0 + my > ny or x0 + mx > nx:
        raise ValueError(
            f"a {shape} window at origin {(y0, x0)} runs past the {series.image_shape} images; "
            f"keep origin ≤ {(ny - my, nx - mx)}."
        )
    return y0, x0


def _crop(
    series: TiltSeries, shape: tuple[int, int], y0: int, x0: int
) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float]]:
    """(cropped images, adjusted shifts, centre offset (dx, dy)) of a window, no checks."""
    ny, nx = series.image_shape
    my, mx = shape
    # where the new centre (M − 1)/2 sits in the old image, relative to the old centre
    off = (x0 + (mx - 1) / 2 - (nx - 1) / 2, y0 + (my - 1) / 2 - (ny - 1) / 2)
    imgs = series.images[..., y0 : y0 + my, x0 : x0 + mx]
    shifts = series.shifts
    if off != (0.0, 0.0) or shifts is not None:
        shifts = shifts_or_zeros(series) - np.asarray(off)[None]
    return np.ascontiguousarray(imgs), shifts, off


def crop(series: TiltSeries, *, shape: Any, origin: Any = None) -> TiltSeries:
    """Cut the same (Y, X) window out of every image, keeping the geometry right.

    wedge's rotation centre is the array centre, index (N − 1)/2 (docs/conventions.md). A
    window ``[y0, y0 + My) × [x0, x0 + Mx)`` has its centre at old coordinates
    ``c' = (x0 + (Mx − 1)/2, y0 + (My − 1)/2)``, i.e. ``o = c' − c`` from the old centre
    ``c``. The tilt axis and object stay where they were, so in the new frame they sit at
    ``−o`` from the new centre, and the shifts (the measured image is the ideal projection
    translated by (+dx, +dy)) become

        (dx', dy') = (dx, dy) − o.

    A centred window of the same parity as the image has ``o = 0`` and leaves the shifts as
    they were (``None`` stays ``None``); otherwise shifts are created or adjusted. Shifts are
    in the frame of the stored (unrotated) images, as ``tilt_axis_angle`` expects.

    Parameters
    ----------
    series : TiltSeries
    shape : int or (My, Mx), pixels
        Window size, at most the image size.
    origin : (y0, x0), pixel indices, optional
        First row and column of the window; default centred, ``((Y − My)//2, (X − Mx)//2)``.

    Returns
    -------
    TiltSeries
        Provenance gains ``crop(shape=…, origin=…, centre_offset=(o_x, o_y))``.

    Raises
    ------
    ValueError
        A window larger than the images or running past their edge.
    """
    check_series(series, "crop")
    shape = shape_pair("shape", shape)
    y0, x0 = _origin(series, shape, origin)
    imgs, shifts, off = _crop(series, shape, y0, x0)
    line = describe("crop", shape=shape, origin=(y0, x0), centre_offset=off)
    return series.with_step(line, images=imgs, shifts=shifts)


def _taper_profile(n: int, width: int) -> np.ndarray:
    """1 in the interior, ``sin²(π d / (2 width))`` for the ``width`` pixels next to each
    end, where ``d`` = 0, 1, … is the distance in pixels to the nearest end."""
    d = np.minimum(np.arange(n), np.arange(n)[::-1]).astype(np.float64)
    return np.where(d < width, np.sin(np.pi * d / (2 * width)) ** 2, 1.0)


def taper_edges(series: TiltSeries, *, width: int) -> TiltSeries:
    """Blend every image into its mean over a cosine edge of ``width`` pixels.

    ``I' = μ + w(y) w(x) (I − μ)`` with ``μ`` the image mean (before tapering) and
    ``w(d) = sin²(π d / (2 width)) = (1 − cos(π d / width)) / 2`` for a pixel ``d`` pixels
    from the nearest edge (``d < width``), 1 further in. Border pixels become exactly ``μ``
    and pixels at least ``width`` from every edge are unchanged, so the periodic images that
    Fourier methods assume have no jump at the border.

    Parameters
    ----------
    series : TiltSeries
    width : int ≥ 1, pixels
        At most half the smaller image dimension.

    Returns
    -------
    TiltSeries
        Provenance gains ``taper_edges(width=…, to=image mean)``.
    """
    check_series(series, "taper_edges")
    width = positive_int("width", width)
    ny, nx = series.image_shape
    if 2 * width > min(ny, nx):
        raise ValueError(
            f"a taper of {width} pixels on each side does not fit the {series.image_shape} "
            f"images; use width ≤ {min(ny, nx) // 2}."
        )
    imgs = flat_images(series)
    mean = imgs.mean(axis=(1, 2), keepdims=True)
    w = _taper_profile(ny, width)[:, None] * _taper_profile(nx, width)[None, :]
    out = np.where(w[None] == 1.0, imgs, mean + w[None] * (imgs - mean))
    line = describe("taper_edges", width=width, to="image mean")
    return series.with_step(line, images=as_series_images(series, out))
