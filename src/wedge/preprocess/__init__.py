"""Image-space preprocessing of tilt series.

Each step maps a :class:`~wedge.TiltSeries` to a new one (the input is never modified) and
appends one line naming itself and its parameters to the series' ``provenance``. The
steps, their equations, units and defaults are in docs/preprocessing.md; :func:`prepare`
is the default HAADF-STEM chain. :func:`rotate_images` (tensor in, tensor out) is the
in-plane rotation used by :func:`wedge.reconstruct`.
"""

from .background import (
    AutoMask,
    background_mask,
    bernstein_basis,
    estimate_background,
    subtract_background,
)
from .chain import prepare
from .dose import critical_exposure, dose_weight, exposure_filter
from .intensity import normalize_images, normalize_mass
from .outliers import find_outliers, remove_outliers
from .resample import bin_images, fourier_downsample
from .rotate import rotate_images, rotate_shifts
from .window import crop, taper_edges

__all__ = [
    "AutoMask",
    "background_mask",
    "bernstein_basis",
    "bin_images",
    "critical_exposure",
    "crop",
    "dose_weight",
    "estimate_background",
    "exposure_filter",
    "find_outliers",
    "fourier_downsample",
    "normalize_images",
    "normalize_mass",
    "prepare",
    "remove_outliers",
    "rotate_images",
    "rotate_shifts",
    "subtract_background",
    "taper_edges",
]
