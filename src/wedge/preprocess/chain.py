"""The default preprocessing chain for a HAADF-STEM tilt series."""

from __future__ import annotations

from typing import Any

from ..tiltseries import TiltSeries
from ._common import check_series, positive_int
from .background import subtract_background
from .intensity import normalize_mass
from .outliers import remove_outliers
from .resample import bin_images

__all__ = ["prepare"]


def prepare(
    series: TiltSeries,
    *,
    degree: int = 3,
    mask: Any = None,
    outlier_threshold: float | None = 8.0,
    normalize: bool = True,
    bin_factor: int = 1,
) -> TiltSeries:
    """Background → outliers → mass normalisation (→ binning, only if asked).

    The default chain for HAADF-STEM: :func:`subtract_background` (Bernstein degree
    ``degree``, ``mask`` or the automatic mask), :func:`remove_outliers` at
    ``outlier_threshold`` robust σ, :func:`normalize_mass`. The frame geometry (image size,
    pixel size, shifts, centre) is kept unless ``bin_factor`` > 1, so the result compares
    pixel for pixel with other tools' alignments of the same stack. Each step adds its own
    provenance line.

    Parameters
    ----------
    series : TiltSeries
    degree : int, 0 … 8, default 3
    mask : AutoMask or bool array, optional
        Background pixels for the fit (:func:`subtract_background`).
    outlier_threshold : float or None, default 8
        ``None`` skips outlier removal.
    normalize : bool, default True
        Mass normalisation; needs two or more tilts and an object inside the field of view
        (see :func:`normalize_mass`).
    bin_factor : int ≥ 1, default 1
        :func:`bin_images` last, when > 1.

    Returns
    -------
    TiltSeries
    """
    check_series(series, "prepare")
    bin_factor = positive_int("bin_factor", bin_factor)
    if normalize and series.n_tilts < 2:
        raise ValueError(
            "prepare normalises the mass across tilts, which needs at least two tilts; this "
            "series has one image, so pass normalize=False."
        )
    out = subtract_background(series, degree=degree, mask=mask)
    if outlier_threshold is not None:
        out = remove_outliers(out, threshold=outlier_threshold)
    if normalize:
        out = normalize_mass(out)
    if bin_factor > 1:
        out = bin_images(out, factor=bin_factor)
    return out
