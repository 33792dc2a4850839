"""Hot-pixel and outlier removal against a local median."""

from __future__ import annotations

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

__all__ = ["find_outliers", "remove_outliers"]

_MAD_TO_SIGMA = 1.4826  # σ of a normal distribution per median absolute deviation


def _check_window(noise_window: int) -> int:
    noise_window = positive_int("noise_window", noise_window, minimum=3)
    if noise_window % 2 == 0:
        raise ValueError(
            f"noise_window must be odd (got {noise_window}), so that the window is centred "
            "on its pixel."
        )
    return noise_window


def _local_mad(dev: np.ndarray, where: np.ndarray, w: int) -> np.ndarray:
    """Median of ``dev`` over the w × w window (edges reflected as in
    :func:`scipy.ndimage.median_filter`) at the pixels ``where`` (K, 3) only."""
    r = w // 2
    padded = np.pad(dev, ((0, 0), (r, r), (r, r)), mode="symmetric")
    dy, dx = np.meshgrid(np.arange(w), np.arange(w), indexing="ij")
    i, y, x = (c[:, None] for c in where.T)
    return np.median(padded[i, y + dy.ravel()[None], x + dx.ravel()[None]], axis=1)


def _detect(imgs: np.ndarray, threshold: float, noise_window: int) -> tuple[np.ndarray, ...]:
    """(outlier mask, 3 × 3 local median) of each image in ``imgs`` (m, Y, X)."""
    med = ndimage.median_filter(imgs, size=(1, 3, 3), mode="reflect")
    dev = np.abs(imgs - med)
    # a floor from the whole image, so that flat (noise-free) areas do not call every
    # rounding difference an outlier; zero only for an image equal to its median filter
    floor = _MAD_TO_SIGMA * np.median(dev.reshape(dev.shape[0], -1), axis=1)
    ring = np.ones((1, 3, 3), dtype=bool)
    ring[0, 1, 1] = False
    extremum = (imgs > ndimage.maximum_filter(imgs, footprint=ring, mode="reflect")) | (
        imgs < ndimage.minimum_filter(imgs, footprint=ring, mode="reflect")
    )
    # the local σ can only raise the floor, so it is needed at the candidates alone
    bad = extremum & (dev > threshold * floor[:, None, None])
    where = np.argwhere(bad)
    local = _MAD_TO_SIGMA * _local_mad(dev, where, noise_window)
    i, y, x = where.T
    bad[i, y, x] = dev[i, y, x] > threshold * np.maximum(local, floor[i])
    return bad, med


def find_outliers(
    series: TiltSeries, *, threshold: float = 8.0, noise_window: int = 5
) -> np.ndarray:
    """Pixels that :func:`remove_outliers` would replace (True), the images' shape.

    Parameters and rule: see :func:`remove_outliers`.
    """
    check_series(series, "find_outliers")
    threshold = positive_float("threshold", threshold)
    noise_window = _check_window(noise_window)
    bad, _ = _detect(flat_images(series), threshold, noise_window)
    return bad.reshape(series.images.shape)


def remove_outliers(
    series: TiltSeries, *, threshold: float = 8.0, noise_window: int = 5
) -> TiltSeries:
    """Replace isolated hot (and cold) pixels by the median of their 3 × 3 neighbourhood.

    Per image, with ``m`` the 3 × 3 median filter (:func:`scipy.ndimage.median_filter`,
    reflecting edges) and ``r = |I − m|``, a pixel is an outlier when both

        r(y, x) > threshold · σ(y, x),
        σ(y, x) = 1.4826 · max( median over the noise_window² window of r,
                                median of r over the whole image ),

    and the pixel lies above the maximum (or below the minimum) of its 8 neighbours; it
    then becomes ``m(y, x)``. Every other pixel keeps its exact value.

    The noise σ (a median absolute deviation) is local, so the stronger shot noise of a
    bright HAADF sample is not taken for outliers; the image-wide median is a floor for flat
    areas. The extremum condition keeps pixels on sharp edges (which differ from their
    median but lie between their neighbours) and means that only isolated pixels are
    replaced: two adjacent hot pixels each see the other as a neighbour.

    Parameters
    ----------
    series : TiltSeries
    threshold : float > 0, robust standard deviations, default 8
        The needle HAADF stack (../shared/data) has heavy-tailed detector noise: at 6σ the
        rule replaces 4,396 of its 5.05 M raw pixels (1,382 of them in the vacuum, raw
        value < −31,800), at 8σ 2,040 (198 in the vacuum).
    noise_window : odd int ≥ 3, pixels, default 5

    Returns
    -------
    TiltSeries
        Provenance gains ``remove_outliers(threshold=…, noise_window=…, replaced=…)`` with
        the number of pixels replaced.
    """
    check_series(series, "remove_outliers")
    threshold = positive_float("threshold", threshold)
    noise_window = _check_window(noise_window)
    imgs = flat_images(series)
    bad, med = _detect(imgs, threshold, noise_window)
    out = np.where(bad, med, imgs)
    line = describe(
        "remove_outliers",
        threshold=threshold,
        noise_window=noise_window,
        replaced=int(bad.sum()),
    )
    return series.with_step(line, images=as_series_images(series, out))
