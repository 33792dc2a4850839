"""Data-space errors: how well calculated projections reproduce the measured tilt series."""

from __future__ import annotations

from typing import Any

import torch

from ._inputs import as_real_pair

__all__ = ["r_factor", "rms_reprojection_error"]


def r_factor(measured: Any, calculated: Any, *, per_image: bool = True) -> float:
    r"""R-factor between measured and calculated projections (RESIRE, Eq. 10).

    .. math::

        R_F = \frac{1}{n} \sum_{\theta}
              \frac{\sum_{x,y} \left| \Pi_\theta(O)\{x,y\} - b_\theta\{x,y\} \right|}
                   {\sum_{x,y} \left| b_\theta\{x,y\} \right|}

    where :math:`b_\theta` is the measured image at tilt θ, :math:`\Pi_\theta(O)` the
    projection of the reconstruction O, and n the number of images: the relative L1
    error of each image, averaged over the images (Pham et al., *Sci. Rep.* 13, 5624
    (2023), Eq. 10).

    Parameters
    ----------
    measured : array (n, Y, X) or (Y, X)
        Measured images b (a 2-D array is one image).
    calculated : array, same shape
        Calculated projections Π(O) in the same units.
    per_image : bool
        True (default) is Eq. 10 exactly, the mean of the per-image ratios. False pools all
        pixels of all images into one ratio, ``sum|b - Π(O)| / sum|b|``.

    Returns
    -------
    float
        The R-factor as a fraction (multiply by 100 for the paper's percentages).

    Raises
    ------
    ValueError
        On mismatched shapes, non-finite values, or a measured image that is all zero.
    """
    b, calc = as_real_pair(measured, calculated, ("measured", "calculated"), ndims=(2, 3))
    if b.ndim == 2:
        b, calc = b[None], calc[None]
    num = (calc - b).abs().sum(dim=(1, 2))
    den = b.abs().sum(dim=(1, 2))
    if per_image:
        if bool((den == 0).any()):
            bad = torch.nonzero(den == 0).flatten().tolist()
            raise ValueError(
                f"measured image(s) {bad} are all zero, so their R-factor is undefined; "
                "drop them or use per_image=False."
            )
        return float((num / den).mean())
    total = float(den.sum())
    if total == 0:
        raise ValueError("the measured images are all zero, so the R-factor is undefined.")
    return float(num.sum()) / total


def rms_reprojection_error(measured: Any, calculated: Any) -> float:
    r"""Root-mean-square re-projection error (CRM, Han et al., Eq. 25).

    .. math::

        \varepsilon = \left( \frac{1}{MN} \sum_{i=1}^{M} \sum_{j=1}^{N}
                      \left( v_{ij} - v'_{ij} \right)^2 \right)^{1/2}

    where :math:`v_{ij}` is pixel i of measured image j, :math:`v'_{ij}` the calculated
    projection, M the number of pixels per image and N the number of images.

    Parameters
    ----------
    measured : array (n, Y, X) (any shape is accepted)
        Measured projections v.
    calculated : array, same shape
        Calculated projections v'.

    Returns
    -------
    float
        ε, in the units of the images.
    """
    v, v_calc = as_real_pair(measured, calculated, ("measured", "calculated"))
    return float(torch.sqrt(torch.mean((v - v_calc) ** 2)))
