"""Intensity normalisation across the tilts of a series."""

from __future__ import annotations

import numpy as np

from ..tiltseries import TiltSeries
from ._common import as_series_images, check_series, describe, flat_images

__all__ = ["normalize_images", "normalize_mass"]


def normalize_images(series: TiltSeries) -> TiltSeries:
    """Give every image zero mean and unit standard deviation.

    ``I'_i = (I_i − mean(I_i)) / std(I_i)`` per (Y, X) image (population standard
    deviation, in float64). Use it where only the contrast pattern matters (e.g. before
    cross-correlation); it destroys the projected-mass relation that reconstruction needs.

    Parameters
    ----------
    series : TiltSeries

    Returns
    -------
    TiltSeries
        Images in units of their own standard deviation; provenance gains
        ``normalize_images(mean=0, std=1)``.

    Raises
    ------
    ValueError
        An image is constant (including all zero): it has no standard deviation to divide by.
    """
    check_series(series, "normalize_images")
    imgs = flat_images(series)
    mean = imgs.mean(axis=(1, 2), keepdims=True)
    centred = imgs - mean
    std = np.sqrt((centred**2).mean(axis=(1, 2), keepdims=True))
    flat = np.flatnonzero(std.ravel() <= 1e-12 * np.maximum(np.abs(mean.ravel()), 1.0))
    if flat.size:
        raise ValueError(
            f"image(s) {flat.tolist()[:10]} are constant, so they have no standard deviation "
            "to normalise by; remove them from the series (e.g. blank frames) first."
        )
    line = describe("normalize_images", mean=0, std=1)
    return series.with_step(line, images=as_series_images(series, centred / std))


def normalize_mass(series: TiltSeries) -> TiltSeries:
    """Scale each image so that its integrated intensity equals the series median.

    For HAADF-STEM the image is (to first order) a linear projection of the specimen's mass,
    so for an object wholly inside the field of view ``M_i = Σ_yx I_i`` is the same at every
    tilt; changes in probe current or detector gain change it. The step applies

        I'_i = I_i · median_j(M_j) / M_i

    Run it after :func:`subtract_background` (a background offset would dominate ``M``).
    An object that leaves the field of view (a needle crossing the image edge, with drift
    along it) changes ``M_i`` for geometric reasons that this step then wrongly removes:
    align and crop to the common field first (docs/preprocessing.md).

    For a focal series every (Y, X) image is scaled on its own, to the median of all.

    Parameters
    ----------
    series : TiltSeries
        At least two tilts, with background removed.

    Returns
    -------
    TiltSeries
        Provenance gains ``normalize_mass(reference=median, target=…, scale=(min, max))``.

    Raises
    ------
    ValueError
        A single tilt (nothing to normalise across), or an image whose integrated intensity
        is zero or negative (background not removed, or a blank or inverted image).
    """
    check_series(series, "normalize_mass")
    if series.n_tilts < 2:
        raise ValueError(
            "normalize_mass needs at least two tilts to normalise across; this series has "
            "one image, so skip the step."
        )
    imgs = flat_images(series)
    mass = imgs.sum(axis=(1, 2))
    bad = np.flatnonzero(~(mass > 0))
    if bad.size:
        raise ValueError(
            f"image(s) {bad.tolist()[:10]} integrate to {mass[bad[0]]:.4g} ≤ 0, so they cannot "
            "be scaled to a common mass; subtract the background first "
            "(wedge.preprocess.subtract_background) and remove blank images."
        )
    target = float(np.median(mass))
    scale = target / mass
    line = describe(
        "normalize_mass",
        reference="median",
        target=target,
        scale=(float(scale.min()), float(scale.max())),
    )
    return series.with_step(line, images=as_series_images(series, imgs * scale[:, None, None]))
