"""The standard set of reconstruction-quality numbers, for reports and run histories."""

from __future__ import annotations

import dataclasses
from typing import Any

from ._inputs import as_real_pair, check_data_range
from .similarity import pearson, psnr, relative_l2, ssim

__all__ = ["MetricSet", "compute_metrics"]


@dataclasses.dataclass(frozen=True)
class MetricSet:
    """Similarity of a reconstruction to a reference volume.

    Attributes
    ----------
    pearson : float
        Pearson correlation coefficient (:func:`wedge.metrics.pearson`).
    relative_l2 : float
        ``||x - ref|| / ||ref||`` (:func:`wedge.metrics.relative_l2`).
    psnr : float
        Peak signal-to-noise ratio, dB (:func:`wedge.metrics.psnr`).
    ssim : float
        Mean SSIM with the default 7-voxel uniform window (:func:`wedge.metrics.ssim`).
    """

    pearson: float
    relative_l2: float
    psnr: float
    ssim: float

    @classmethod
    def compute(cls, x: Any, reference: Any, *, data_range: float | None = None) -> MetricSet:
        """Compute every metric of ``x`` against ``reference``.

        Parameters
        ----------
        x : array (Z, Y, X) or (Y, X)
            The reconstruction.
        reference : array, same shape
            The reference (ground truth); every axis at least 7 long (SSIM window).
        data_range : float, optional
            L for PSNR and SSIM; defaults to ``reference.max() - reference.min()``.
        """
        tx, tr = as_real_pair(x, reference, ("x", "reference"), ndims=(2, 3))
        value = check_data_range(data_range, tr)
        return cls(
            pearson=pearson(tx, tr),
            relative_l2=relative_l2(tx, tr),
            psnr=psnr(tx, tr, data_range=value),
            ssim=ssim(tx, tr, data_range=value),
        )

    def as_dict(self) -> dict[str, float]:
        """The metrics as ``{name: value}``, in field order."""
        return dataclasses.asdict(self)


def compute_metrics(x: Any, reference: Any, *, data_range: float | None = None) -> dict[str, float]:
    """The standard metric set of ``x`` against ``reference`` as a dict.

    Keys: ``pearson``, ``relative_l2``, ``psnr`` (dB), ``ssim``; see :class:`MetricSet`.
    """
    return MetricSet.compute(x, reference, data_range=data_range).as_dict()
