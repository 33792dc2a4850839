"""Atom tracing: from a reconstructed potential volume to atom positions, intensities and widths.

The procedure follows Ren et al., Ultramicroscopy 208, 112860 (2020), section 2.6, itself the
"atom tracing" of earlier atomic electron tomography (AET) work:

1. filter the volume with a difference of Gaussians (σ 0.5 and 1 voxel, zero total amplitude)
   and take its local maxima above a threshold as candidate sites;
2. refine every site by fitting a 3D Gaussian plus a constant background by nonlinear least
   squares (Levenberg-Marquardt, batched over sites, on the voxels of a small box around it);
3. subtract the fitted sites from the volume and look for new candidates in the residual;
4. refit every site on the volume minus its fitted neighbours, remove sites whose height is
   below a threshold (Ren: ~10 % of the maximum potential) or whose width is below a size
   threshold, merge sites closer than a minimum distance, and repeat 3-4 until the RMS change
   of the positions falls below a tolerance (Ren: 0.005 voxel) and no site is added or removed.

Conventions: the volume is a (Z, Y, X) array; an atom at (x, y, z) Å relative to the box centre
sits at array index (z/v + (Nz-1)/2, y/v + (Ny-1)/2, x/v + (Nx-1)/2) for voxel size v.
Output positions are Å in columns (x, y, z) relative to the box centre.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .._backend import resolve_device
from ._gaussfit import _fit_sites, _gauss, _Grid, _initial_theta, _localise, _offsets

__all__ = [
    "TraceOptions",
    "TracedAtoms",
    "trace",
    "dog_filter",
    "estimate_noise",
]

_TWO_PI_32 = (2.0 * math.pi) ** 1.5
_RELAX = 1.0  # relaxation of the Jacobi sweeps (1: plain refit)


@dataclasses.dataclass(frozen=True)
class TraceOptions:
    """Settings of :func:`trace`. Lengths are in voxels unless the name says Å.

    Parameters
    ----------
    dog_sigmas : (float, float)
        Widths (voxels) of the two Gaussians of the difference-of-Gaussians detector
        (Ren et al. 2020: 0.5 and 1).
    candidate_threshold : float
        A local maximum of the DoG-filtered volume is a candidate when it exceeds this fraction
        of the DoG maximum of the input volume.
    min_height_fraction : float
        Sites whose fitted peak height is below this fraction of the reference peak (the
        maximum of the volume smoothed with σ = 0.5 voxel) are removed (Ren: ~10 %).
    min_height : float or None
        Absolute height threshold in volume units; overrides ``min_height_fraction``.
    min_intensity_fraction : float
        Sites whose integrated intensity is below this fraction of the reference intensity
        (the median over first-fit sites at least half as high as the highest) are removed:
        this drops narrow noise spikes whose extrapolated height passes the height threshold.
    min_snr : float
        Sites whose fitted height is below ``min_snr`` times the noise level are removed.
    candidate_snr : float
        DoG maxima below ``candidate_snr`` times the noise level of the DoG-filtered volume
        are not candidates.
    noise_sigma : float or None
        Noise standard deviation per voxel (volume units). None: estimated by
        :func:`estimate_noise` (robust for atoms in vacuum; in a dense sample with no empty
        region it over-estimates, so pass a value, or 0 to rely on the fractions alone).
    intensity_radius : float or None
        Radius (voxels) of the sphere summed for :attr:`TracedAtoms.intensities`. None:
        ``max(1.5, 1.5 σ)`` for the median fitted width σ.
    min_width : float
        Sites whose smallest fitted width σ (voxels) is below this are removed (noise fits
        thin needles).
    max_width : float or None
        Sites whose mean fitted width σ (voxels) is above this are removed (None: no limit).
    min_distance : float or None
        Sites closer than this (Å) are merged. None: ``max(merge_fraction * bond_length,
        1.5 * voxel_size)``.
    bond_length : float
        A typical nearest-neighbour distance of the sample, Å (used for ``min_distance``).
    merge_fraction : float
        Fraction of ``bond_length`` below which two sites are one atom.
    fit_radius : int or None
        Half-width (voxels) of the cubic fit box. None: from the median width of a first fit,
        ``clip(round(2 σ), 2, 6)``.
    anisotropic : bool
        Fit one width per axis (the missing wedge elongates atoms along z); else one width.
    fit_background : bool
        Fit a constant background in each box in addition to the Gaussian.
    max_iterations : int
        Maximum number of subtract / re-detect / refit rounds.
    tolerance : float
        Convergence: RMS change of the positions between rounds, voxels.
    lm_iterations : int
        Levenberg-Marquardt steps per fit.
    sweeps : int
        Refits of all sites (each against the others' latest fit) per round. Strongly
        overlapping atoms (closer than ~3 σ) converge faster with 2-3.
    batch_size : int
        Sites fitted together (memory ~ batch_size x (2 r + 1)^3 x 8 x 8 bytes).
    device : str or None
        Torch device of the fits (None: CUDA when present, else CPU).
    """

    dog_sigmas: tuple[float, float] = (0.5, 1.0)
    candidate_threshold: float = 0.1
    min_height_fraction: float = 0.1
    min_height: float | None = None
    min_intensity_fraction: float = 0.2
    min_snr: float = 5.0
    candidate_snr: float = 3.0
    noise_sigma: float | None = None
    intensity_radius: float | None = None
    min_width: float = 0.5
    max_width: float | None = None
    min_distance: float | None = None
    bond_length: float = 2.35
    merge_fraction: float = 0.5
    fit_radius: int | None = None
    anisotropic: bool = True
    fit_background: bool = True
    max_iterations: int = 12
    tolerance: float = 0.005
    lm_iterations: int = 20
    sweeps: int = 1
    batch_size: int = 8192
    device: str | None = None

    def __post_init__(self) -> None:
        s0, s1 = (float(s) for s in self.dog_sigmas)
        if not (0 < s0 < s1):
            raise ValueError(
                f"dog_sigmas must be two positive widths, smaller first, got {self.dog_sigmas}."
            )
        positive = {
            "bond_length": self.bond_length,
            "merge_fraction": self.merge_fraction,
            "tolerance": self.tolerance,
        }
        for name, val in positive.items():
            if not (val > 0 and math.isfinite(val)):
                raise ValueError(f"TraceOptions.{name} must be a positive number, got {val}.")
        if self.intensity_radius is not None and not (0 < self.intensity_radius <= 8):
            raise ValueError(
                f"intensity_radius must be in (0, 8] voxels, got {self.intensity_radius}."
            )
        if self.noise_sigma is not None and not (self.noise_sigma >= 0):
            raise ValueError(f"noise_sigma must be >= 0 (volume units), got {self.noise_sigma}.")
        for name in (
            "min_snr",
            "candidate_snr",
            "candidate_threshold",
            "min_height_fraction",
            "min_intensity_fraction",
            "min_width",
        ):
            val = getattr(self, name)
            if not (val >= 0 and math.isfinite(val)):
                raise ValueError(f"TraceOptions.{name} must be >= 0, got {val}.")
        if self.min_distance is not None and not self.min_distance > 0:
            raise ValueError(
                f"min_distance must be a positive length in Å, got {self.min_distance}."
            )
        if self.max_width is not None and not self.max_width > self.min_width:
            raise ValueError(
                f"max_width ({self.max_width}) must exceed min_width ({self.min_width})."
            )
        if self.fit_radius is not None and not (1 <= int(self.fit_radius) <= 16):
            raise ValueError(
                f"fit_radius must be an integer from 1 to 16 voxels, got {self.fit_radius}."
            )
        for name in ("max_iterations", "lm_iterations", "batch_size", "sweeps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TraceOptions.{name} must be >= 1, got {getattr(self, name)}.")


@dataclasses.dataclass(frozen=True, eq=False)
class TracedAtoms:
    """Traced atomic sites.

    Attributes
    ----------
    positions : (n, 3) float64, Å
        Columns (x, y, z) relative to the volume centre (index (N-1)/2 on each axis).
    heights : (n,) float64
        Fitted Gaussian peak amplitude above the local background, in volume units.
    intensities : (n,) float64
        Site intensity: the sum of the volume over the voxels within ``intensity_radius`` of
        the site, after subtracting the fitted neighbours and the fitted local background
        (volume units x voxels). A non-parametric integrated potential, the quantity species
        are classified by; much less noisy than the integral of the fitted Gaussian.
    widths : (n, 3) float64, Å
        Fitted standard deviations along (x, y, z).
    species : (n,) int
        Species label per site, 0 = weakest (all 0 before classification).
    symbols : tuple of str
        Element symbol of each label (``symbols[species[i]]``); ("X",) when unknown.
    voxel_size : float, Å
    volume_shape : (Z, Y, X)
    n_iterations, converged, rms_change
        Rounds run, whether the tolerance was met, and the last RMS position change (voxels).
    """

    positions: np.ndarray
    heights: np.ndarray
    intensities: np.ndarray
    widths: np.ndarray
    species: np.ndarray
    voxel_size: float
    volume_shape: tuple[int, int, int]
    symbols: tuple[str, ...] = ("X",)
    n_iterations: int = 0
    converged: bool = False
    rms_change: float = float("nan")

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    @property
    def indices(self) -> np.ndarray:
        """Positions as fractional array indices (z, y, x), shape (n, 3)."""
        return positions_to_indices(self.positions, self.volume_shape, self.voxel_size)

    @property
    def element_symbols(self) -> list[str]:
        """Element symbol of every site."""
        return [self.symbols[int(k)] for k in self.species]

    def with_species(self, labels: Any, symbols: Sequence[str] | None = None) -> TracedAtoms:
        """A copy with new species labels (and optionally symbols, one per label)."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(self),):
            raise ValueError(f"labels must have shape ({len(self)},), got {labels.shape}.")
        syms = tuple(symbols) if symbols is not None else self.symbols
        n_lab = int(labels.max()) + 1 if labels.size else 1
        if len(syms) < n_lab:
            syms = tuple(syms) + tuple(f"X{k}" for k in range(len(syms), n_lab))
        return dataclasses.replace(self, species=labels, symbols=syms)


def positions_to_indices(
    positions: np.ndarray, shape: Sequence[int], voxel_size: float
) -> np.ndarray:
    """(n, 3) Å (x, y, z) about the box centre -> (n, 3) fractional indices (z, y, x)."""
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    return np.asarray(positions, dtype=np.float64)[:, ::-1] / voxel_size + centre


def indices_to_positions(
    indices: np.ndarray, shape: Sequence[int], voxel_size: float
) -> np.ndarray:
    """(n, 3) fractional indices (z, y, x) -> (n, 3) Å (x, y, z) about the box centre."""
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    return ((np.asarray(indices, dtype=np.float64) - centre) * voxel_size)[:, ::-1].copy()


# ----------------------------------------------------------------------------- detection


def dog_filter(volume: np.ndarray, sigmas: tuple[float, float] = (0.5, 1.0)) -> np.ndarray:
    """Difference of Gaussians ``G_σ0 * V - G_σ1 * V`` (σ in voxels, zero total amplitude)."""
    v = np.asarray(volume, dtype=np.float32)
    return ndimage.gaussian_filter(v, sigmas[0], mode="nearest") - ndimage.gaussian_filter(
        v, sigmas[1], mode="nearest"
    )


def _filter_gain(fn: Any) -> float:
    """L2 norm of the impulse response of the linear filter ``fn`` (white-noise gain)."""
    delta = np.zeros((15, 15, 15), dtype=np.float32)
    delta[7, 7, 7] = 1.0
    return float(np.sqrt((fn(delta).astype(np.float64) ** 2).sum()))


def _highpass(v: np.ndarray) -> np.ndarray:
    return v - ndimage.gaussian_filter(v, 1.0, mode="nearest")


def estimate_noise(volume: Any) -> float:
    """Robust noise standard deviation per voxel, assuming white noise.

    ``1.4826 MAD(V - G_1 * V) / ||δ - G_1||``: the median absolute deviation of the volume
    minus its σ = 1 voxel Gaussian smoothing, scaled to a standard deviation and divided by
    the filter's white-noise gain. Atoms occupy few voxels of a particle in vacuum, so the
    median sees the noise; in a dense sample it also sees atoms and over-estimates.
    """
    v = np.asarray(volume, dtype=np.float32)
    h = _highpass(v)
    mad = float(np.median(np.abs(h - np.median(h))))
    return 1.4826 * mad / _filter_gain(_highpass)


def _local_maxima(dog: np.ndarray, threshold: float) -> np.ndarray:
    """Integer (z, y, x) indices of 26-neighbourhood maxima of ``dog`` above ``threshold``."""
    mx = ndimage.maximum_filter(dog, size=3, mode="constant", cval=-np.inf)
    return np.argwhere((dog == mx) & (dog > threshold)).astype(np.float64)


# ----------------------------------------------------------------------------- Gaussian model
# Per-site parameters (n, 8): height A, centre (z, y, x) in index units, log σ (z, y, x), b.


def _merge_close(
    theta: np.ndarray, ids: np.ndarray, min_dist_vox: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge sites closer than ``min_dist_vox`` (connected groups -> intensity-weighted centre)."""
    pairs = cKDTree(theta[:, 1:4]).query_pairs(min_dist_vox, output_type="ndarray")
    if len(pairs) == 0:
        return theta, ids
    n = len(theta)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    w = theta[:, 0] * np.exp(theta[:, 4:7].sum(1))  # integrated intensity / (2π)^{3/2}
    wsum = np.bincount(comp, w, n_comp)
    centre = np.stack([np.bincount(comp, w * theta[:, k], n_comp) for k in (1, 2, 3)], 1)
    order = np.lexsort((-w, comp))  # strongest member first in each group
    first = order[np.r_[True, comp[order][1:] != comp[order][:-1]]]
    merged = theta[first].copy()
    merged[:, 1:4] = centre[comp[first]] / wsum[comp[first], None]
    return merged, ids[first]


@dataclasses.dataclass
class _Limits:
    """Removal thresholds resolved from the options and the volume."""

    min_height: float
    min_dist_vox: float
    min_intensity: float = 0.0
    radius: int = 2


def _intensity(theta: np.ndarray) -> np.ndarray:
    """Integrated Gaussian ``A (2π)^{3/2} σz σy σx`` (volume units x voxel³)."""
    return theta[:, 0] * _TWO_PI_32 * np.exp(theta[:, 4:7].sum(1))


def _prune(
    theta: np.ndarray, ids: np.ndarray, shape: Sequence[int], lim: _Limits, opts: TraceOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Drop failed, weak, too narrow/wide or out-of-volume sites, then merge close ones."""
    sigma = np.exp(theta[:, 4:7])
    sigma_mean = sigma.mean(1)
    with np.errstate(invalid="ignore"):
        keep = np.all(np.isfinite(theta), axis=1) & (theta[:, 0] >= lim.min_height)
        keep &= _intensity(theta) >= lim.min_intensity
        keep &= sigma.min(1) >= opts.min_width  # noise fits thin needles along some axis
        keep &= sigma.max(1) < 0.99 * (2 * lim.radius + 1)  # width ran to its bound: no peak
        if opts.max_width is not None:
            keep &= sigma_mean <= opts.max_width
        hi = np.asarray(shape, dtype=np.float64) - 0.5
        keep &= np.all((theta[:, 1:4] >= -0.5) & (theta[:, 1:4] < hi), axis=1)
    return _merge_close(theta[keep], ids[keep], lim.min_dist_vox)


# ----------------------------------------------------------------------------- driver


def _validate(volume: Any, voxel_size: Any) -> tuple[np.ndarray, float]:
    if voxel_size is None:
        raise ValueError(
            "the voxel size is unknown: pass voxel_size (Å per voxel), e.g. trace(vol, 0.35)."
        )
    try:
        vs = float(voxel_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"voxel_size must be a number of Å per voxel, got {voxel_size!r}."
        ) from None
    if not (vs > 0 and math.isfinite(vs)):
        raise ValueError(f"voxel_size must be a positive number of Å per voxel, got {voxel_size}.")
    if isinstance(volume, torch.Tensor):
        volume = volume.detach().cpu().numpy()
    v = np.asarray(volume)
    if v.ndim != 3 or min(v.shape) < 3:
        raise ValueError(
            "volume must be a 3D (Z, Y, X) array of at least 3 voxels per axis, "
            f"got shape {v.shape}."
        )
    if not np.issubdtype(v.dtype, np.number) or np.iscomplexobj(v):
        raise ValueError(f"volume must hold real numbers, got dtype {v.dtype}.")
    v = v.astype(np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("volume contains NaN or Inf; clean it (e.g. numpy.nan_to_num) first.")
    return v, vs


def _none_left(what: str) -> ValueError:
    return ValueError(
        f"the thresholds removed every site ({what}): lower TraceOptions.min_height_fraction / "
        "min_height / min_width / candidate_threshold, or check the volume holds atoms."
    )


def trace(
    volume: Any, voxel_size: float | None, options: TraceOptions | None = None
) -> TracedAtoms:
    """Trace atoms in a reconstructed potential volume (Ren et al. 2020, section 2.6).

    Parameters
    ----------
    volume : array (Z, Y, X), NumPy or torch
        Reconstructed potential; atoms are positive peaks. Axis 0 is the beam direction (z).
    voxel_size : float
        Å per voxel (required: there is no safe default).
    options : TraceOptions, optional

    Returns
    -------
    TracedAtoms
        Positions in Å (columns x, y, z about the volume centre index (N-1)/2), fitted heights,
        integrated intensities and widths; species all 0 (see
        :func:`wedge.atoms.classify.classify_species`).

    Raises
    ------
    ValueError
        For a missing voxel size, a malformed volume, or thresholds that leave no site.
    """
    opts = options if options is not None else TraceOptions()
    vol, vs = _validate(volume, voxel_size)
    device = resolve_device(opts.device)
    dist_a = opts.min_distance or max(opts.merge_fraction * opts.bond_length, 1.5 * vs)
    dog = dog_filter(vol, opts.dog_sigmas)
    noise = opts.noise_sigma if opts.noise_sigma is not None else estimate_noise(vol)
    dog_gain = _filter_gain(lambda x: dog_filter(x, opts.dog_sigmas))
    dog_thr = max(
        opts.candidate_threshold * float(dog.max()), opts.candidate_snr * noise * dog_gain, 0.0
    )
    ref = float(ndimage.gaussian_filter(vol, 0.5, mode="nearest").max())
    lim = _Limits(
        min_height=opts.min_height
        if opts.min_height is not None
        else max(opts.min_height_fraction * ref, opts.min_snr * noise),
        min_dist_vox=dist_a / vs,
        radius=opts.fit_radius or 2,
    )
    sites = _local_maxima(dog, dog_thr)
    if len(sites) == 0:
        raise _none_left("no local maximum above candidate_threshold")

    # First fit, sites independent. It sets the box size from the typical width, and the
    # reference intensity from the sites at least half as high as the highest peak.
    pad = 19
    grid = _Grid(vol, pad, device)
    t0 = _initial_theta(sites, vol, float(opts.dog_sigmas[1]), opts)
    th = _fit_sites(grid, None, t0, lim.radius, opts)
    th, ids = _prune(th, np.arange(len(th)), vol.shape, lim, opts)
    if len(th) == 0:
        raise _none_left("after the first fit")
    strong = th[:, 0] >= 0.5 * ref
    if not strong.any():
        strong = th[:, 0] >= 0.5 * th[:, 0].max()
    lim.min_intensity = opts.min_intensity_fraction * float(np.median(_intensity(th[strong])))
    sigma_typ = float(np.median(np.exp(th[strong, 4:7])))
    if opts.fit_radius is None:
        lim.radius = int(np.clip(round(2.0 * sigma_typ), 2, 6))
    render_r = int(min(max(lim.radius, math.ceil(3.0 * sigma_typ)), pad - 1))
    next_id = int(ids.max()) + 1

    rms, converged, it = float("nan"), False, 0
    removed = np.zeros((0, 3))  # where sites were removed: no new candidate there
    for it in range(1, opts.max_iterations + 1):
        th_start, ids_start = th, ids
        model = grid.render(th, render_r, opts.batch_size)
        # Re-detect in the residual; keep candidates away from existing sites.
        resid = (grid.data - model).reshape(grid.padded_shape)[pad:-pad, pad:-pad, pad:-pad]
        resid_np = resid.cpu().numpy()
        new = _local_maxima(dog_filter(resid_np, opts.dog_sigmas), dog_thr)
        if len(new):  # a fitted height >= min_height needs a residual peak of about that
            ni = new.astype(np.int64)
            new = new[resid_np[ni[:, 0], ni[:, 1], ni[:, 2]] >= 0.5 * lim.min_height]
        if len(new):  # not near a site, nor where a site was removed (no flicker)
            dist, _ = cKDTree(np.concatenate([th[:, 1:4], removed])).query(new, k=1)
            new = new[dist >= lim.min_dist_vox]
        if len(new):
            t0 = _initial_theta(new, resid_np, sigma_typ, opts)
            tn = _fit_sites(_Grid(resid_np, pad, device), None, t0, lim.radius, opts)
            tn, _ = _prune(tn, np.arange(len(tn)), vol.shape, lim, opts)
            th = np.concatenate([th, tn])
            ids = np.concatenate([ids, np.arange(next_id, next_id + len(tn))])
            next_id += len(tn)
        # Refit all sites with their neighbours subtracted, then prune and merge.
        th_fit = th
        for _ in range(opts.sweeps):  # Jacobi sweeps: overlapping neighbours converge jointly
            model = grid.render(th_fit, render_r, opts.batch_size)
            refit = _fit_sites(grid, model, th_fit, lim.radius, opts)
            failed = ~np.all(np.isfinite(refit), axis=1)  # keep the last good estimate
            th_fit = np.where(failed[:, None], th_fit, th_fit + _RELAX * (refit - th_fit))
        th_before, ids_before = th, ids
        th, ids = _prune(th_fit, ids, vol.shape, lim, opts)
        if len(th) == 0:
            raise _none_left(f"in refinement round {it}")
        gone = ~np.isin(ids_before, ids)
        removed = np.concatenate([removed, th_before[gone, 1:4]])
        common, i_old, i_new = np.intersect1d(ids_start, ids, return_indices=True)
        d = th[i_new, 1:4] - th_start[i_old, 1:4]
        rms = float(np.sqrt((d * d).sum(1).mean())) if len(common) else float("inf")
        n_changed = (len(ids) - len(common)) + (len(ids_start) - len(common))
        if rms < opts.tolerance and n_changed == 0:
            converged = True
            break
    model = grid.render(th, render_r, opts.batch_size)
    r_int = opts.intensity_radius or max(1.5, 1.5 * float(np.median(np.exp(th[:, 4:7]))))
    sums = _sphere_sums(grid, model, th, min(r_int, float(pad - 1)), opts.batch_size)
    return _to_traced(th, sums, vol.shape, vs, it, converged, rms)


def _sphere_sums(
    grid: _Grid, model: torch.Tensor, theta: np.ndarray, radius: float, batch: int
) -> np.ndarray:
    """Sum over a sphere of ``radius`` voxels of (volume - other sites - local background)."""
    offs = _offsets(math.ceil(radius), grid.device)
    offs = offs[(offs.to(torch.float32) ** 2).sum(1) <= radius**2]
    out = np.empty(len(theta))
    for s in range(0, len(theta), batch):
        t, c = _localise(theta[s : s + batch], grid.device)
        idx = grid.flat_index(c, offs)
        g, _ = _gauss(t, offs.to(torch.float32))
        val = grid.data[idx] - model[idx] + t[:, None, 0] * g - t[:, None, 7]
        out[s : s + batch] = (val * grid.inside[idx]).sum(1).double().cpu().numpy()
    return out


def _to_traced(
    th: np.ndarray,
    sums: np.ndarray,
    shape: Sequence[int],
    vs: float,
    n_it: int,
    converged: bool,
    rms: float,
) -> TracedAtoms:
    sig = np.exp(th[:, 4:7])
    return TracedAtoms(
        positions=indices_to_positions(th[:, 1:4], shape, vs),
        heights=th[:, 0].copy(),
        intensities=sums,
        widths=(sig * vs)[:, ::-1].copy(),
        species=np.zeros(len(th), dtype=np.int64),
        voxel_size=vs,
        volume_shape=tuple(int(s) for s in shape),
        n_iterations=n_it,
        converged=converged,
        rms_change=rms,
    )


# ----------------------------------------------------------------------------- files
