"""Fourier shell (ring) correlation and resolution read-out."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from ._inputs import as_real_pair

__all__ = ["FSCResult", "fsc", "half_bit_threshold"]


def half_bit_threshold(n_voxels: Any) -> np.ndarray:
    r"""Half-bit information threshold per shell (van Heel & Schatz, *J. Struct. Biol.* 2005).

    .. math::

        T_{1/2\,\mathrm{bit}}(n) = \frac{0.2071 + 1.9102/\sqrt{n}}{1.2071 + 0.9102/\sqrt{n}}

    Parameters
    ----------
    n_voxels : array-like
        Number of Fourier voxels n in each shell (positive).

    Returns
    -------
    numpy.ndarray
        T for each n (float64); tends to 0.1716 for large n and is 1 at n = 1.
    """
    n = np.asarray(n_voxels, dtype=np.float64)
    if n.size and not bool(np.all(n > 0)):
        raise ValueError("every shell voxel count must be positive; drop empty shells first.")
    inv = 1.0 / np.sqrt(n)
    return (0.2071 + 1.9102 * inv) / (1.2071 + 0.9102 * inv)


def _first_crossing(frequencies: np.ndarray, excess: np.ndarray) -> float:
    """Resolution (1 / frequency) where ``excess`` = FSC - threshold first drops below 0."""
    below = np.flatnonzero(excess < 0)
    if below.size == 0:
        return float(1.0 / frequencies[-1])
    i = int(below[0])
    if i == 0:
        return math.inf
    d0, d1 = excess[i - 1], excess[i]
    f = frequencies[i - 1] + d0 / (d0 - d1) * (frequencies[i] - frequencies[i - 1])
    return float(1.0 / f)


@dataclasses.dataclass(frozen=True, eq=False)
class FSCResult:
    """A Fourier shell correlation curve.

    Attributes
    ----------
    frequencies : numpy.ndarray (n_shells,)
        Shell centres k * Δ / voxel_size in 1/Å, k = 1 ... n_shells, Δ = 0.5 / n_shells
        cycles per voxel (the last shell is centred on Nyquist, 1 / (2 voxel_size)).
    correlation : numpy.ndarray (n_shells,)
        FSC per shell; NaN where either input has no power in the shell.
    n_voxels : numpy.ndarray (n_shells,)
        Number of Fourier voxels in each shell, counting both Friedel mates (the full,
        not the half, transform). Shells holding no voxel (possible only when ``n_shells``
        is finer than the Fourier grid) are left out of all three arrays.
    voxel_size : float
        Voxel size in Å.
    """

    frequencies: np.ndarray
    correlation: np.ndarray
    n_voxels: np.ndarray
    voxel_size: float

    @property
    def half_bit(self) -> np.ndarray:
        """The half-bit threshold curve, :func:`half_bit_threshold` of ``n_voxels``."""
        return half_bit_threshold(self.n_voxels)

    def _excess(self, threshold: np.ndarray | float) -> np.ndarray:
        corr = np.nan_to_num(self.correlation, nan=0.0)
        return corr - threshold

    def resolution(self, threshold: float = 0.143) -> float:
        """Resolution in Å at the first crossing of the curve below a fixed threshold.

        The crossing frequency is interpolated linearly between the last shell at or above
        the threshold and the first shell below it; the resolution is its inverse. Shells
        with NaN correlation (no power) count as 0.

        Parameters
        ----------
        threshold : float
            FSC threshold, 0.143 by default (Rosenthal & Henderson 2003, for half maps).

        Returns
        -------
        float
            Å. ``math.inf`` when the first shell is already below the threshold (nothing
            resolved); ``1 / frequencies[-1]`` (the Nyquist limit, ``2 * voxel_size`` with
            default shells) when the curve never drops below it: the true resolution is at
            least that good but the sampling cannot say more.
        """
        t = float(threshold)
        if not math.isfinite(t):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}.")
        return _first_crossing(self.frequencies, self._excess(t))

    def resolution_half_bit(self) -> float:
        """Resolution in Å where the curve first drops below the half-bit curve.

        Same interpolation and limits as :meth:`resolution`, with the per-shell threshold
        :attr:`half_bit`.
        """
        return _first_crossing(self.frequencies, self._excess(self.half_bit))


def _shell_geometry(
    shape: tuple[int, ...], n_shells: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shell index and Friedel weight of every sample of an ``rfftn`` of ``shape``.

    The frequency radius is rho = sqrt(sum_i f_i^2), f_i the frequency along axis i in
    cycles per voxel (``fftfreq(N_i)``: normalised by that axis's length, so cubic and
    non-cubic arrays share one physical scale). Shell k holds rho/Δ in [k - 1/2, k + 1/2).
    """
    axes = [torch.fft.fftfreq(n, dtype=torch.float64, device=device) for n in shape[:-1]]
    axes.append(torch.fft.rfftfreq(shape[-1], dtype=torch.float64, device=device))
    grids = torch.meshgrid(*axes, indexing="ij")
    rho = torch.sqrt(sum(g * g for g in grids))
    index = torch.floor(rho * (2 * n_shells) + 0.5).to(torch.int64)
    # Samples of the half transform stand for themselves and their Friedel mate, except the
    # planes that are their own mates (last-axis frequency 0, and Nyquist for even length).
    n_last = shape[-1]
    w_last = torch.full((n_last // 2 + 1,), 2.0, dtype=torch.float64, device=device)
    w_last[0] = 1.0
    if n_last % 2 == 0:
        w_last[-1] = 1.0
    weight = w_last.expand(index.shape)
    return index, weight


def fsc(a: Any, b: Any, *, voxel_size: float = 1.0, n_shells: int | None = None) -> FSCResult:
    r"""Fourier shell correlation of two volumes (Fourier ring correlation of two images).

    .. math::

        \mathrm{FSC}(k) = \frac{\sum_{\mathbf q \in k} \mathrm{Re}\,[A(\mathbf q)\,B^*(\mathbf q)]}
                              {\sqrt{\sum_{\mathbf q \in k} |A(\mathbf q)|^2
                                     \sum_{\mathbf q \in k} |B(\mathbf q)|^2}}

    with A, B the discrete Fourier transforms of ``a`` and ``b`` and the sums over the
    Fourier voxels q of shell k (Harauz & van Heel 1986; the FSC that RESIRE and CRM use
    to compare reconstructions with the model). Shells are one Fourier voxel wide,
    Δ = 0.5 / n_shells cycles per voxel, centred on k Δ for k = 1 ... n_shells: the DC term
    and the corners beyond Nyquist are left out. Computed with a real FFT in the inputs'
    precision (float64 if either is float64, else float32), shell sums in float64.

    Parameters
    ----------
    a, b : array (Z, Y, X) or (Y, X)
        The two maps, same shape; need not be cubic. Isotropic voxels.
    voxel_size : float
        Voxel (pixel) size in Å; sets the frequency unit.
    n_shells : int, optional
        Number of shells up to Nyquist. Default ``min(shape) // 2``, which makes the shell
        width one Fourier voxel of the shortest axis.

    Returns
    -------
    FSCResult
        Frequencies (1/Å), correlation and voxel count per shell; ``.resolution()`` and
        ``.resolution_half_bit()`` read off the resolution in Å.
    """
    ta, tb = as_real_pair(a, b, ("a", "b"), dtype=None, ndims=(2, 3))
    vs = float(voxel_size)
    if not (math.isfinite(vs) and vs > 0):
        raise ValueError(f"voxel_size must be a positive finite number (Å), got {voxel_size!r}.")
    shape = tuple(ta.shape)
    if n_shells is None:
        n_shells = min(shape) // 2
        if n_shells < 1:
            raise ValueError(f"shape {shape} has an axis shorter than 2; FSC needs at least 2.")
    elif isinstance(n_shells, bool) or int(n_shells) != n_shells or n_shells < 1:
        raise ValueError(f"n_shells must be a positive integer, got {n_shells!r}.")
    n_shells = int(n_shells)

    fa = torch.fft.rfftn(ta)
    fb = torch.fft.rfftn(tb)
    index, weight = _shell_geometry(shape, n_shells, ta.device)
    keep = (index >= 1) & (index <= n_shells)
    idx = index[keep]
    w = weight[keep]
    cross = (fa * fb.conj()).real[keep].to(torch.float64) * w
    pow_a = (fa.real**2 + fa.imag**2)[keep].to(torch.float64) * w
    pow_b = (fb.real**2 + fb.imag**2)[keep].to(torch.float64) * w

    def shell_sum(values: torch.Tensor) -> np.ndarray:
        out = torch.zeros(n_shells + 1, dtype=torch.float64, device=ta.device)
        return out.index_add_(0, idx, values)[1:].cpu().numpy()

    num, pa, pb, counts = (shell_sum(v) for v in (cross, pow_a, pow_b, w))
    den = np.sqrt(pa * pb)
    corr = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    freqs = np.arange(1, n_shells + 1, dtype=np.float64) * (0.5 / n_shells) / vs
    filled = counts > 0
    return FSCResult(
        frequencies=freqs[filled],
        correlation=corr[filled],
        n_voxels=np.rint(counts[filled]).astype(np.int64),
        voxel_size=vs,
    )
