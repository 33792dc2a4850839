"""Filtered and weighted back-projection (``fbp``, ``wbp``).

Both filter every image row along the detector X axis (perpendicular to the tilt axis Y)
with a ramp filter, then back-project with the projector's exact adjoint ``Aᵀ``, each
image carrying an angular weight:

``x = Σ_i w_i · A_iᵀ (h ⊛ b_i)``

* ``fbp``: uniform weights ``w_i = π / n`` (a uniform half-turn is ∫₀^π dθ ≈ Σ π/n).
* ``wbp``: per-tilt weights for uneven tilt spacing, each tilt weighted by half the
  angular distance to its two neighbours (the idea of IMOD's R-weighting). The gap
  that closes the half-turn counts as a neighbour gap unless it is a missing wedge
  (wider than twice the widest gap), where each end tilt takes its adjacent gap: a
  uniform half-turn gives exactly ``π / n``, and a limited range ±θ_max is not charged
  for its missing wedge.

The ramp filter is the discrete-space ramp of Kak & Slaney (*Principles of Computerized
Tomographic Imaging*, Eq. 3.61, pixel spacing τ = 1): ``h[0] = 1/4``, ``h[n] = 0`` for
even ``n``, ``h[n] = −1/(π n)²`` for odd ``n``. Its DFT, on a zero-padded length
``P = 2^⌈log₂ 2 N_x⌉``, is the ramp without the DC offset of a sampled ``|f|``, so a
constant object reconstructs to its value. A window (``ram-lak`` = none,
``shepp-logan`` = sinc(f), ``cosine`` = cos(πf), ``hann``, ``hamming``; f in cycles per
pixel, |f| ≤ 1/2) multiplies it, optionally cut off at ``cutoff`` × Nyquist.

Axes: images (n, Y, X); volume (Z, Y, X); rotation centre (N − 1)/2 (the projector's).
The single-axis fast path and the general 3D path both use ``op.adjoint``; on the general
path the filter is still applied along detector X, which is exact only for tilts about
the image Y axis (FBP is an approximation for other orientations).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import torch

from ..projectors.base import Projector
from ..runner import Callback, RunOptions, RunResult
from .constraints import Constraints
from .registry import register_method

__all__ = [
    "FILTERS",
    "FBPOptions",
    "fbp",
    "wbp",
    "ramp_filter",
    "filter_images",
    "tilt_weights",
]

FilterName = Literal["ram-lak", "shepp-logan", "cosine", "hann", "hamming", "none"]
#: the ramp-filter windows known to :func:`ramp_filter`
FILTERS: tuple[str, ...] = get_args(FilterName)


def _check_filter(name: str, cutoff: float) -> None:
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; known filters: {', '.join(FILTERS)}.")
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"cutoff must be a fraction of Nyquist in (0, 1], got {cutoff}.")


@dataclasses.dataclass
class FBPOptions:
    """Options of ``fbp`` and ``wbp``.

    Parameters
    ----------
    filter : {"ram-lak", "shepp-logan", "cosine", "hann", "hamming", "none"}
        Window multiplying the ramp; ``"none"`` skips filtering altogether (plain
        back-projection with the angular weights, what TomoPy's ``fbp`` computes).
    cutoff : float
        Frequency above which the filter is zero, as a fraction of Nyquist (0, 1].
    positivity, lower, upper, support
        Constraints applied to the result (see :class:`~wedge.methods.Constraints`).
    """

    filter: str = "ram-lak"
    cutoff: float = 1.0
    positivity: bool = False
    lower: float | None = None
    upper: float | None = None
    support: Any = None

    def __post_init__(self) -> None:
        _check_filter(self.filter, self.cutoff)
        self.constraints()  # bound checks

    def constraints(self) -> Constraints:
        return Constraints(self.positivity, self.lower, self.upper, self.support)


def ramp_filter(
    n: int, filter: str = "ram-lak", cutoff: float = 1.0, *, device: Any = None
) -> torch.Tensor:
    """Frequency response (length ``P``, FFT order) of the windowed ramp for rows of ``n``.

    ``P`` is the smallest power of two ≥ 2n. Built from Kak & Slaney's spatial ramp
    ``h[k]`` (pixel spacing 1), so ``Σ_k h[k] ≈ 0`` and the DC response is the discrete
    ramp's, not a sampled ``|f|``'s.
    """
    _check_filter(filter, cutoff)
    if filter == "none":
        raise ValueError("filter 'none' has no frequency response; it skips filtering.")
    p = max(2, 1 << math.ceil(math.log2(2 * n)))
    k = np.fft.fftfreq(p, d=1.0 / p)  # integer lags 0, 1, …, −1 in FFT order
    h = np.zeros(p)
    odd = (k.astype(np.int64) % 2) == 1
    h[0] = 0.25
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    resp = np.real(np.fft.fft(h))
    f = np.fft.fftfreq(p)  # cycles per pixel
    if filter == "shepp-logan":
        resp = resp * np.sinc(f / cutoff)
    elif filter == "cosine":
        resp = resp * np.cos(np.pi * f / cutoff)
    elif filter == "hann":
        resp = resp * (0.5 + 0.5 * np.cos(2 * np.pi * f / cutoff))
    elif filter == "hamming":
        resp = resp * (0.54 + 0.46 * np.cos(2 * np.pi * f / cutoff))
    resp[np.abs(f) > 0.5 * cutoff] = 0.0
    return torch.as_tensor(resp, dtype=torch.float32, device=device)


def filter_images(
    images: torch.Tensor, filter: str = "ram-lak", cutoff: float = 1.0
) -> torch.Tensor:
    """Ramp-filter every row of ``images`` (…, X) along X with zero padding to ``P``."""
    if filter == "none":
        _check_filter(filter, cutoff)
        return images.to(torch.float32)
    nx = images.shape[-1]
    resp = ramp_filter(nx, filter, cutoff, device=images.device)
    spec = torch.fft.rfft(images.to(torch.float32), n=resp.numel(), dim=-1)
    out = torch.fft.irfft(spec * resp[: spec.shape[-1]], n=resp.numel(), dim=-1)
    return out[..., :nx].contiguous()


def tilt_weights(angles_deg: Sequence[float] | np.ndarray) -> np.ndarray:
    """WBP weights in radians: half the angular distance to each tilt's two neighbours.

    The gap that closes the half-turn (180° − span) is an ordinary neighbour gap of the
    two end tilts when it is at most twice the widest gap of the series (the series
    covers the half-turn); wider, it is a missing wedge and each end tilt takes its
    adjacent gap instead. Duplicated angles share their weight equally.
    """
    a = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    n = a.size
    if n == 1:
        return np.array([np.pi])
    order = np.argsort(a, kind="stable")
    s = a[order]
    span = s[-1] - s[0]
    if span >= 180.0:
        raise ValueError("wbp needs tilt angles within a half-turn (span < 180°); fold them first.")
    wrap = 180.0 - span
    # collapse duplicates: each unique angle gets the weight, then shares it
    uniq, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    if uniq.size == 1:
        w_sorted = np.full(n, np.pi / n)
    else:
        g = np.diff(uniq)
        periodic = wrap <= 2.0 * g.max()  # the closing gap is an ordinary gap, not a wedge
        left = np.concatenate([[wrap if periodic else g[0]], g])
        right = np.concatenate([g, [wrap if periodic else g[-1]]])
        w_u = np.deg2rad(0.5 * (left + right))
        w_sorted = w_u[inverse] / counts[inverse]
    w = np.empty(n)
    w[order] = w_sorted
    return w


def _direct(
    op: Projector, data: torch.Tensor, weights: np.ndarray, options: FBPOptions
) -> RunResult:
    cons = options.constraints()
    cons.check(op.volume_shape)
    filtered = filter_images(data, options.filter, options.cutoff)
    w = torch.as_tensor(weights, dtype=torch.float32, device=filtered.device)
    x = op.adjoint(filtered * w[:, None, None])
    if cons.active:
        x = cons.apply(x)
    return RunResult(x=x, history=[], stopped="direct", iterations=0)


@register_method(
    "fbp",
    FBPOptions,
    "filtered back-projection (ramp filter, uniform weights π/n)",
    iterative=False,
    default_iterations=1,
    default_model="ray",
    work_volumes=0,
    work_images=2,
)
def fbp(
    op: Projector,
    data: torch.Tensor,
    iterations: int | None = None,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: FBPOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """Filtered back-projection ``x = (π/n) Σ_i A_iᵀ (h ⊛ b_i)``.

    ``data`` is (n, Y, X) line integrals in voxel units; the result is the density per
    voxel length. ``iterations``, ``x0``, ``callbacks`` and ``run`` are ignored (direct).
    """
    options = options or FBPOptions()
    n = data.shape[0]
    return _direct(op, data, np.full(n, np.pi / n), options)


@register_method(
    "wbp",
    FBPOptions,
    "weighted back-projection (ramp filter, per-tilt angular weights)",
    iterative=False,
    default_iterations=1,
    default_model="ray",
    work_volumes=0,
    work_images=2,
)
def wbp(
    op: Projector,
    data: torch.Tensor,
    iterations: int | None = None,
    x0: torch.Tensor | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    options: FBPOptions | None = None,
    run: RunOptions | None = None,
) -> RunResult:
    """Weighted back-projection: FBP with the per-tilt weights of :func:`tilt_weights`.

    Uses the tilt angles θ of ``op.geometry`` (degrees); for a uniform half-turn it equals
    :func:`fbp`.
    """
    options = options or FBPOptions()
    return _direct(op, data, tilt_weights(op.geometry.angles), options)
