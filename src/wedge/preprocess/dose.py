"""Dose weighting: the exposure filter of Grant & Grigorieff (eLife 4, e06980, 2015)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tiltseries import TiltSeries
from ._common import as_series_images, check_series, describe, flat_images, positive_float

__all__ = ["critical_exposure", "dose_weight", "exposure_filter"]

# Grant & Grigorieff (2015), fitted to their rotavirus VP6 data: N_e(k) = a k^b + c
GRANT_GRIGORIEFF_A = 0.245
GRANT_GRIGORIEFF_B = -1.665
GRANT_GRIGORIEFF_C = 2.81


def critical_exposure(k: Any) -> np.ndarray:
    """Critical exposure ``N_e(k) = a k^b + c`` in e⁻/Å² (Grant & Grigorieff 2015).

    ``a = 0.245``, ``b = −1.665``, ``c = 2.81``: the exposure at which the signal power at
    spatial frequency ``k`` (1/Å) has fallen to 1/e, its amplitude to ``exp(−1/2)``
    (:func:`exposure_filter`). ``N_e(0) = ∞``: the mean never fades.

    Parameters
    ----------
    k : array, 1/Å, ≥ 0

    Returns
    -------
    ndarray float64, e⁻/Å²
    """
    k = np.asarray(k, dtype=np.float64)
    if np.any(~np.isfinite(k)) or np.any(k < 0):
        raise ValueError("spatial frequencies k must be finite and ≥ 0 (in 1/Å).")
    out = np.full(k.shape, np.inf)
    pos = k > 0
    out[pos] = GRANT_GRIGORIEFF_A * k[pos] ** GRANT_GRIGORIEFF_B + GRANT_GRIGORIEFF_C
    return out


def exposure_filter(k: Any, exposure: Any) -> np.ndarray:
    """Amplitude attenuation ``q(k, N) = exp(−N / (2 N_e(k)))`` (Grant & Grigorieff 2015),
    broadcasting ``k`` (1/Å, ≥ 0) against ``exposure`` N (e⁻/Å², ≥ 0); float64."""
    n = np.asarray(exposure, dtype=np.float64)
    if np.any(~np.isfinite(n)) or np.any(n < 0):
        raise ValueError("exposures must be finite and ≥ 0 (in e⁻/Å²); a dose cannot be negative.")
    return np.exp(-n / (2 * critical_exposure(k)))


def _accumulated(n_tilts: int, dose_per_tilt: Any, order: Any, accumulated_dose: Any) -> np.ndarray:
    if (dose_per_tilt is None) == (accumulated_dose is None):
        raise ValueError(
            "give either dose_per_tilt (e⁻/Å² per image, with the acquisition order) or "
            "accumulated_dose (e⁻/Å² before each image), not both or neither."
        )
    if accumulated_dose is not None:
        if order is not None:
            raise ValueError(
                "order applies to dose_per_tilt only; accumulated_dose already gives each "
                "image's prior exposure."
            )
        acc = np.asarray(accumulated_dose, dtype=np.float64).reshape(-1)
        if acc.size != n_tilts:
            raise ValueError(
                f"accumulated_dose has {acc.size} values for {n_tilts} tilts; give one per "
                "image, in e⁻/Å²."
            )
        if np.any(~np.isfinite(acc)) or np.any(acc < 0):
            raise ValueError(
                "accumulated_dose must be finite and ≥ 0 e⁻/Å² for every image; a dose "
                "cannot be negative."
            )
        return acc
    dose = positive_float("dose_per_tilt", dose_per_tilt, allow_zero=True)
    seq = np.arange(n_tilts) if order is None else np.asarray(order).reshape(-1)
    if seq.size != n_tilts or not np.array_equal(np.sort(seq), np.arange(n_tilts)):
        raise ValueError(
            f"order must list every image index 0 … {n_tilts - 1} exactly once, in the order "
            "the images were acquired."
        )
    acc = np.empty(n_tilts)
    acc[seq.astype(np.int64)] = dose * np.arange(n_tilts)
    return acc


def dose_weight(
    series: TiltSeries,
    *,
    dose_per_tilt: float | None = None,
    order: Any = None,
    accumulated_dose: Any = None,
) -> TiltSeries:
    """Attenuate each image's spatial frequencies by its prior exposure.

    Image ``i`` with accumulated exposure ``N_i`` before it is filtered in Fourier space by
    ``q(k, N_i) = exp(−N_i / (2 N_e(k)))``, ``N_e(k) = 0.245 k^−1.665 + 2.81`` e⁻/Å²
    (:func:`exposure_filter`; Grant & Grigorieff 2015), with
    ``k = sqrt(k_y² + k_x²)`` in 1/Å from ``numpy.fft.fftfreq(N, d=pixel_size)``. The mean
    (k = 0) is unchanged; the first image acquired (N = 0) is unchanged. The images of a
    focal series share the filter of their tilt.

    Parameters
    ----------
    series : TiltSeries
        ``pixel_size`` must be the true size in Å.
    dose_per_tilt : float ≥ 0, e⁻/Å², optional
        Exposure of each image; ``N_i = dose_per_tilt × (number of images acquired before
        image i)``.
    order : sequence of int, optional
        Image indices in acquisition order (``order[0]`` was acquired first); default the
        stack order 0, 1, … n−1. For a dose-symmetric scheme starting at 0° give e.g.
        ``np.argsort(np.abs(angles), kind="stable")``.
    accumulated_dose : array (n_tilts,), e⁻/Å², optional
        ``N_i`` directly, instead of ``dose_per_tilt`` and ``order``.

    Returns
    -------
    TiltSeries
        Provenance gains ``dose_weight(accumulated_dose=(min, max) e/A^2, a=…, b=…, c=…)``.

    Raises
    ------
    ValueError
        Negative or non-finite doses, both or neither of ``dose_per_tilt`` and
        ``accumulated_dose``, or an ``order`` that is not a permutation of the images.
    """
    check_series(series, "dose_weight")
    acc = _accumulated(series.n_tilts, dose_per_tilt, order, accumulated_dose)
    ny, nx = series.image_shape
    ky = np.fft.fftfreq(ny, d=series.pixel_size)
    kx = np.fft.rfftfreq(nx, d=series.pixel_size)
    k = np.hypot(ky[:, None], kx[None, :])
    per_image = np.repeat(acc, series.n_defocus)
    q = exposure_filter(k[None], per_image[:, None, None])
    flat = flat_images(series)
    out = np.fft.irfft2(np.fft.rfft2(flat) * q, s=(ny, nx))
    line = describe(
        "dose_weight",
        accumulated_dose=f"({acc.min():.4g}, {acc.max():.4g}) e/A^2",
        a=GRANT_GRIGORIEFF_A,
        b=GRANT_GRIGORIEFF_B,
        c=GRANT_GRIGORIEFF_C,
    )
    return series.with_step(line, images=as_series_images(series, out))
