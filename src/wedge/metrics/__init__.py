"""Reconstruction quality metrics.

Data space (measured against calculated projections): :func:`r_factor` (RESIRE Eq. 10),
:func:`rms_reprojection_error` (CRM Eq. 25). Real space (reconstruction against a
reference): :func:`relative_l2`, :func:`pearson`, :func:`psnr`, :func:`ssim`, and the
bundle :class:`MetricSet` / :func:`compute_metrics`. Fourier space: :func:`fsc` (FSC for
volumes, FRC for images) returning an :class:`FSCResult` with resolution read-outs.

Every function accepts NumPy arrays or torch tensors (any device; a tensor's device is
used for the computation, NumPy inputs are computed on the CPU) and returns Python floats
or NumPy arrays.
"""

from .fsc import FSCResult, fsc, half_bit_threshold
from .projection import r_factor, rms_reprojection_error
from .similarity import pearson, psnr, relative_l2, ssim
from .summary import MetricSet, compute_metrics

__all__ = [
    "FSCResult",
    "MetricSet",
    "compute_metrics",
    "fsc",
    "half_bit_threshold",
    "pearson",
    "psnr",
    "r_factor",
    "relative_l2",
    "rms_reprojection_error",
    "ssim",
]
