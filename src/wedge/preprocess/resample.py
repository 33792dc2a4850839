"""Down-sampling: integer binning and Fourier cropping, with pixel size and shifts kept
consistent with wedge's centre convention (index (N − 1)/2)."""

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
from .window import _crop

__all__ = ["bin_images", "fourier_downsample"]


def bin_images(series: TiltSeries, *, factor: int) -> TiltSeries:
    """Average ``factor`` × ``factor`` blocks of pixels.

    ``I'[i, j] = mean(I[b i : b i + b, b j : b j + b])`` (image values are kept, not summed),
    ``pixel_size' = b · pixel_size`` and shifts ``s' = s / b``. New pixel ``i`` covers old
    pixels ``b i … b i + b − 1``, so its centre is at old coordinate ``b i + (b − 1)/2`` and
    the new centre index (N/b − 1)/2 lands on the old centre (N − 1)/2: the geometry is
    unchanged. When ``b`` does not divide the image size, the remainder ``r = N mod b`` is
    trimmed, ``r // 2`` pixels from the start and the rest from the end; an odd ``r`` moves
    the centre by half a pixel, which the shifts absorb as in :func:`crop`.

    Reconstructing binned images with ``b``-times larger voxels multiplies the volume's
    values by ``b`` (projections are line integrals in voxel lengths).

    Parameters
    ----------
    series : TiltSeries
    factor : int ≥ 1
        Bin factor ``b``; at most the smaller image dimension.

    Returns
    -------
    TiltSeries
        Provenance gains ``bin_images(factor=…, trimmed=(r_y, r_x))``.

    Raises
    ------
    ValueError
        A factor that is not a positive whole number, or larger than the images.
    """
    check_series(series, "bin_images")
    b = positive_int("factor", factor)
    ny, nx = series.image_shape
    if b > min(ny, nx):
        raise ValueError(
            f"a bin factor of {b} is larger than the {series.image_shape} images; use at most "
            f"{min(ny, nx)}."
        )
    ry, rx = ny % b, nx % b
    imgs, shifts, _ = _crop(series, (ny - ry, nx - rx), ry // 2, rx // 2)
    my, mx = ny - ry, nx - rx
    flat = imgs.reshape(-1, my, mx).astype(np.float64)
    m = flat.shape[0]
    binned = flat.reshape(m, my // b, b, mx // b, b).mean(axis=(2, 4))
    line = describe("bin_images", factor=b, trimmed=(ry, rx))
    return series.with_step(
        line,
        images=as_series_images(series, binned),
        pixel_size=series.pixel_size * b,
        shifts=None if shifts is None else shifts / b,
    )


def _axis_plan(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source indices, target indices, phase) to crop an n-point spectrum to m points.

    Keeps the signed frequencies ``|k| < m/2`` (all of them when m == n, so that the
    identity keeps an even size's Nyquist term) and multiplies them by
    ``(m/n) exp(2πi k δ / n)`` with ``δ = (n/m − 1)/2``: new sample ``i`` is the band-limited
    image at old coordinate ``i · n/m + δ``, which keeps the centre (n − 1)/2 in place.
    """
    k = np.rint(np.fft.fftfreq(n) * n).astype(np.int64)  # 0, 1, …, −2, −1
    keep = np.ones(n, dtype=bool) if m == n else np.abs(k) < m / 2
    src = np.flatnonzero(keep)
    dst = k[keep] % m
    delta = (n / m - 1) / 2
    phase = (m / n) * np.exp(2j * np.pi * k[keep] * delta / n)
    return src, dst, phase


def fourier_downsample(series: TiltSeries, *, shape: Any) -> TiltSeries:
    """Down-sample every image to ``shape`` by cropping its Fourier transform.

    With ``f = Y / My = X / Mx`` (the same on both axes, so pixels stay square), the
    spectrum ``F(k_y, k_x)`` of each image is cut to ``|k_y| < My/2, |k_x| < Mx/2`` (signed
    integer frequencies; an even target's Nyquist term is dropped, so the result stays
    real) and multiplied by ``(My Mx / (Y X)) exp(2πi δ (k_y / Y + k_x / X))`` with
    ``δ = (f − 1)/2``. New pixel ``i`` is then the band-limited image at old coordinate
    ``f i + (f − 1)/2`` — the centre of the block it replaces, as in :func:`bin_images` — so
    the centre (N − 1)/2 stays put; values keep their scale (the mean is unchanged),
    ``pixel_size' = f · pixel_size`` and shifts ``s' = s / f``.

    Parameters
    ----------
    series : TiltSeries
    shape : int or (My, Mx), pixels
        Target size, at most the image size, with ``My · X = Mx · Y``.

    Returns
    -------
    TiltSeries
        Provenance gains ``fourier_downsample(shape=…, factor=…)``.

    Raises
    ------
    ValueError
        A target larger than the images, or with another aspect ratio.
    """
    check_series(series, "fourier_downsample")
    my, mx = shape_pair("shape", shape)
    ny, nx = series.image_shape
    if my > ny or mx > nx:
        raise ValueError(
            f"fourier_downsample cannot enlarge images: target {(my, mx)} exceeds "
            f"{series.image_shape}; give a shape no larger than the images."
        )
    if my * nx != mx * ny:
        raise ValueError(
            f"target {(my, mx)} has another aspect ratio than the {series.image_shape} "
            "images, which would make the pixels non-square; scale both axes by the same "
            "factor (crop first if needed)."
        )
    f = ny / my
    flat = flat_images(series)
    spec = np.fft.fft2(flat)
    sy, dy, py = _axis_plan(ny, my)
    sx, dx, px = _axis_plan(nx, mx)
    out = np.zeros((flat.shape[0], my, mx), dtype=np.complex128)
    out[:, dy[:, None], dx[None, :]] = spec[:, sy[:, None], sx[None, :]] * (
        py[:, None] * px[None, :]
    )
    small = np.fft.ifft2(out).real
    shifts = None if series.shifts is None else shifts_or_zeros(series) / f
    line = describe("fourier_downsample", shape=(my, mx), factor=f)
    return series.with_step(
        line,
        images=as_series_images(series, small),
        pixel_size=series.pixel_size * f,
        shifts=shifts,
    )
