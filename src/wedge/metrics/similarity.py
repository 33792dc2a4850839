"""Real-space similarity of a reconstruction to a reference volume (or image).

Relative L2 error, Pearson correlation, PSNR and SSIM, as used to score reconstructions
against a ground truth (CRM, Han et al., Sec. 4: PSNR, SSIM and PCC). The arrays are
compared voxel by voxel; any shape is accepted except by :func:`ssim` (2-D or 3-D).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ._inputs import as_real_pair, check_data_range

__all__ = ["relative_l2", "pearson", "psnr", "ssim"]

# Voxels per chunk of the SSIM input slab; bounds the float64 working memory (about
# 5 fields x 3 copies x 8 bytes per voxel) to a few hundred MB for any volume size.
_SSIM_CHUNK_VOXELS = 1 << 22


def relative_l2(x: Any, reference: Any) -> float:
    r"""Relative L2 error :math:`\|x - r\|_2 / \|r\|_2` over all voxels.

    Parameters
    ----------
    x : array, any shape
        The reconstruction.
    reference : array, same shape
        The reference r; must not be all zero.

    Returns
    -------
    float
        0 for a perfect match; 1 for ``x = 0``.
    """
    tx, tr = as_real_pair(x, reference, ("x", "reference"))
    norm = torch.linalg.vector_norm(tr)
    if float(norm) == 0:
        raise ValueError("the reference is all zero, so the relative error is undefined.")
    return float(torch.linalg.vector_norm(tx - tr) / norm)


def pearson(x: Any, y: Any) -> float:
    r"""Pearson correlation coefficient (PCC) of two arrays over all voxels.

    .. math::

        r = \frac{\sum_i (x_i - \bar x)(y_i - \bar y)}
                 {\sqrt{\sum_i (x_i - \bar x)^2 \sum_i (y_i - \bar y)^2}}

    Parameters
    ----------
    x, y : array, same shape
        Neither may be constant.

    Returns
    -------
    float
        r in [-1, 1].
    """
    tx, ty = as_real_pair(x, y, ("x", "y"))
    dx = (tx - tx.mean()).flatten()
    dy = (ty - ty.mean()).flatten()
    sxx, syy = torch.dot(dx, dx), torch.dot(dy, dy)
    if float(sxx) == 0 or float(syy) == 0:
        which = "x" if float(sxx) == 0 else "y"
        raise ValueError(f"{which} is constant, so its Pearson correlation is undefined.")
    r = torch.dot(dx, dy) / torch.sqrt(sxx * syy)
    return float(r.clamp(-1.0, 1.0))


def psnr(x: Any, reference: Any, data_range: float | None = None) -> float:
    r"""Peak signal-to-noise ratio in dB.

    .. math::

        \mathrm{PSNR} = 10 \log_{10} \frac{L^2}{\frac{1}{N}\sum_i (x_i - r_i)^2}

    Parameters
    ----------
    x : array, any shape
        The reconstruction.
    reference : array, same shape
        The reference r.
    data_range : float, optional
        L. Defaults to ``reference.max() - reference.min()``. (scikit-image's
        ``peak_signal_noise_ratio`` guesses L from the dtype instead; pass the same value
        to both to compare.)

    Returns
    -------
    float
        PSNR in dB; ``inf`` when x equals the reference.
    """
    tx, tr = as_real_pair(x, reference, ("x", "reference"))
    value = check_data_range(data_range, tr)
    mse = float(torch.mean((tx - tr) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(value * value / mse)


def _ssim_kernel(
    win_size: int | None, gaussian_weights: bool, sigma: float
) -> tuple[torch.Tensor, int]:
    """The normalised 1-D window (float64) and its length."""
    if gaussian_weights:
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}.")
        radius = int(3.5 * sigma + 0.5)  # truncate=3.5 as scikit-image: 11 taps for sigma=1.5
        length = 2 * radius + 1
        if win_size is not None and win_size != length:
            raise ValueError(
                f"with gaussian_weights=True the window length follows sigma ({length} for "
                f"sigma={sigma}); leave win_size=None or pass win_size={length}."
            )
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        return k / k.sum(), length
    length = 7 if win_size is None else int(win_size)
    if length != win_size and win_size is not None or length < 3 or length % 2 == 0:
        raise ValueError(f"win_size must be an odd integer >= 3, got {win_size!r}.")
    return torch.full((length,), 1.0 / length, dtype=torch.float64), length


def _filter_valid(fields: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable filtering of ``fields`` (B, *spatial) along every spatial axis, 'valid' mode.

    Output sample i along an axis is sum_k kernel[k] * input[i + k] (a sum of shifted views,
    one per tap): the window lies wholly inside the input, which is exactly scikit-image's
    SSIM map after its border crop.
    """
    taps = kernel.tolist()
    out = fields
    for axis in range(1, fields.ndim):
        m = out.shape[axis] - len(taps) + 1
        acc = out.narrow(axis, 0, m) * taps[0]
        for j, w in enumerate(taps[1:], start=1):
            acc.add_(out.narrow(axis, j, m), alpha=w)
        out = acc
    return out


def ssim(
    x: Any,
    reference: Any,
    data_range: float | None = None,
    *,
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    use_sample_covariance: bool = True,
) -> float:
    r"""Mean structural similarity (SSIM) of a 2-D image or 3-D volume.

    Wang, Bovik, Sheikh & Simoncelli, *IEEE TIP* 13, 600 (2004), Eq. 13, evaluated in a
    sliding window w and averaged over all window positions wholly inside the array:

    .. math::

        \mathrm{SSIM} = \frac{(2\mu_x\mu_r + C_1)(2\sigma_{xr} + C_2)}
                             {(\mu_x^2 + \mu_r^2 + C_1)(\sigma_x^2 + \sigma_r^2 + C_2)},
        \qquad C_1 = (K_1 L)^2,\; C_2 = (K_2 L)^2 .

    The defaults reproduce ``skimage.metrics.structural_similarity`` with its defaults
    (uniform 7-voxel window, K1 = 0.01, K2 = 0.03, sample covariance with the factor
    NP/(NP-1), NP = window voxels, mean over the map with a (w-1)/2 border dropped).
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` is Wang et al.'s
    11-tap Gaussian window (truncated at 3.5 sigma, as scikit-image). Computed in float64
    with separable 1-D filters (sums of shifted views), in slabs along the first axis.

    Parameters
    ----------
    x : array (Y, X) or (Z, Y, X)
        The reconstruction.
    reference : array, same shape
        The reference. Every axis must be at least the window length long.
    data_range : float, optional
        L. Defaults to ``reference.max() - reference.min()``; scikit-image requires it for
        float data, so pass the same value to compare.
    win_size : int, optional
        Odd window length (default 7) for the uniform window; with Gaussian weights it
        follows ``sigma`` and may be omitted.
    gaussian_weights : bool
        Gaussian instead of uniform window weights.
    sigma : float
        Standard deviation of the Gaussian window, voxels.
    k1, k2 : float
        Stabilising constants K1, K2 (non-negative).
    use_sample_covariance : bool
        Scale (co)variances by NP/(NP-1) (scikit-image default); False gives Wang et al.

    Returns
    -------
    float
        Mean SSIM, at most 1 (1 for identical arrays).
    """
    tx, tr = as_real_pair(x, reference, ("x", "reference"), ndims=(2, 3))
    value = check_data_range(data_range, tr)
    if not (k1 >= 0 and k2 >= 0 and math.isfinite(k1) and math.isfinite(k2)):
        raise ValueError(f"k1 and k2 must be non-negative finite numbers, got {k1!r}, {k2!r}.")
    kernel, length = _ssim_kernel(win_size, gaussian_weights, sigma)
    if min(tr.shape) < length:
        raise ValueError(
            f"the arrays have shape {tuple(tr.shape)} but the SSIM window is {length} voxels "
            f"long; every axis must be at least {length} (pass a smaller odd win_size)."
        )
    n_window = length**tr.ndim
    cov_norm = n_window / (n_window - 1) if use_sample_covariance else 1.0
    c1 = (k1 * value) ** 2
    c2 = (k2 * value) ** 2
    # (Co)variances are invariant to a common offset: remove it to limit cancellation.
    offset = tr.mean()
    xs, rs = tx - offset, tr - offset

    n_out0 = tr.shape[0] - length + 1
    rows = max(1, _SSIM_CHUNK_VOXELS // max(1, math.prod(tr.shape[1:])) - length + 1)
    total = torch.zeros((), dtype=torch.float64, device=tr.device)
    for start in range(0, n_out0, rows):
        stop = min(n_out0, start + rows)
        a = xs[start : stop + length - 1]
        b = rs[start : stop + length - 1]
        mu_a, mu_b, m_aa, m_bb, m_ab = _filter_valid(
            torch.stack([a, b, a * a, b * b, a * b]), kernel
        )
        var_a = cov_norm * (m_aa - mu_a * mu_a)
        var_b = cov_norm * (m_bb - mu_b * mu_b)
        cov = cov_norm * (m_ab - mu_a * mu_b)
        mu_a = mu_a + offset
        mu_b = mu_b + offset
        num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
        den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
        total = total + (num / den).sum()
    n_map = n_out0 * math.prod(s - length + 1 for s in tr.shape[1:])
    return float(total) / n_map
