"""Species classification of traced atoms with a Gaussian mixture.

Ren et al., Ultramicroscopy 208, 112860 (2020), section 2.6: fit the histogram of the site
intensities with a mixture of Gaussians (two for Si/O) and put the classification threshold
at the intersection of neighbouring weighted components; sites below the threshold are the
lighter species. Here the mixture is fitted by expectation-maximisation on the values
themselves (no binning), for any number of species; labels are ordered by increasing mean
intensity (0 = lightest). Optionally the mixture is two-dimensional, on (log intensity,
log mean width), with full covariances and maximum-posterior labels (the 2D analogue of the
intersection rule).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .tracing import TracedAtoms

__all__ = [
    "SpeciesClassification",
    "classify_species",
    "fit_gaussian_mixture",
    "gaussian_intersections",
]

Feature = Literal["intensity", "height", "intensity+width"]


@dataclasses.dataclass(frozen=True, eq=False)
class SpeciesClassification:
    """Result of :func:`classify_species`.

    Attributes
    ----------
    labels : (n,) int
        Species label per site, 0 = lowest mean feature (lightest element).
    means : (k, d)
        Component means, ordered by increasing first feature.
    covariances : (k, d, d)
        Component covariances (d = 1: variances).
    weights : (k,)
        Mixture weights.
    thresholds : (k - 1,)
        For 1D features: the intersections of neighbouring weighted components (feature
        units); a site with value between ``thresholds[j-1]`` and ``thresholds[j]`` is species
        j. Empty for 2D features.
    feature : str
        What was classified.
    log_likelihood : float
        Mean log-likelihood per site of the fitted mixture.
    """

    labels: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    thresholds: np.ndarray
    feature: str
    log_likelihood: float


def _check_count(n_species: Any) -> int:
    if isinstance(n_species, bool) or not isinstance(n_species, (int, np.integer)):
        raise ValueError(f"n_species must be a whole number >= 1, got {n_species!r}.")
    if n_species < 1:
        raise ValueError(
            f"n_species must be at least 1 (one species per element), got {n_species}."
        )
    return int(n_species)


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(x; mean_k, cov_k) for x (n, d), mean (k, d), cov (k, d, d) -> (n, k)."""
    d = x.shape[1]
    chol = np.linalg.cholesky(cov)
    diff = x[:, None, :] - mean[None]  # (n, k, d)
    sol = np.linalg.solve(chol[None], diff[..., None])[..., 0]  # L^-1 (x - m)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(-1)
    return -0.5 * ((sol * sol).sum(-1) + logdet[None] + d * math.log(2.0 * math.pi))


def _em(x: np.ndarray, resp: np.ndarray, n_iter: int, reg: float) -> tuple[np.ndarray, ...]:
    """EM from initial responsibilities; returns (weights, means, covs, mean log-likelihood)."""
    n, d = x.shape
    eye = np.eye(d) * reg
    ll_old = -np.inf
    for _ in range(n_iter):
        nk = resp.sum(0) + 1e-12
        w = nk / n
        mean = (resp.T @ x) / nk[:, None]
        diff = x[:, None, :] - mean[None]
        cov = np.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk[:, None, None] + eye
        logp = _log_gauss(x, mean, cov) + np.log(w)[None]
        mx = logp.max(1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(logp - mx).sum(1))
        resp = np.exp(logp - lse[:, None])
        ll = float(lse.mean())
        if abs(ll - ll_old) < 1e-10:
            break
        ll_old = ll
    return w, mean, cov, ll


def fit_gaussian_mixture(
    values: Any, n_components: int, *, n_iter: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Maximum-likelihood Gaussian mixture of ``values`` ((n,) or (n, d)) by EM.

    Starts from equal-count quantile groups of the first feature and from k-means++ seeds
    (a few), keeps the best likelihood. Returns (weights (k,), means (k, d), covariances
    (k, d, d), mean log-likelihood), components ordered by increasing first-feature mean.
    """
    k = _check_count(n_components)
    x = np.asarray(values, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] < 2 * k:
        raise ValueError(
            f"a {k}-component mixture needs at least {2 * k} values, got {x.shape[0]}: "
            "trace a larger volume or lower n_species."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("the values to classify contain NaN or Inf.")
    scale = x.std(0)
    scale[scale == 0] = 1.0
    reg = 1e-6 * float((scale**2).mean())
    inits = []
    rank = np.argsort(np.argsort(x[:, 0], kind="stable"), kind="stable")
    inits.append(np.eye(k)[np.minimum(rank * k // len(x), k - 1)])
    rng = np.random.default_rng(seed)
    xs = x / scale
    for _ in range(4):  # k-means++ seeds -> hard assignments
        centres = [xs[rng.integers(len(xs))]]
        for _ in range(1, k):
            d2 = np.min([((xs - c) ** 2).sum(1) for c in centres], axis=0)
            centres.append(xs[rng.choice(len(xs), p=d2 / d2.sum())] if d2.sum() > 0 else xs[0])
        lab = np.argmin(((xs[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        inits.append(np.eye(k)[lab])
    best = max((_em(x, r, n_iter, reg) for r in inits), key=lambda f: f[3])
    w, mean, cov, ll = best
    order = np.argsort(mean[:, 0])
    return w[order], mean[order], cov[order], ll


def gaussian_intersections(
    weights: np.ndarray, means: np.ndarray, variances: np.ndarray
) -> np.ndarray:
    """Points between neighbouring 1D components where ``w_j N(x; m_j, s_j²)`` are equal.

    Solves the quadratic in x from equating the two weighted log densities and keeps the root
    between the two means (falls back to the midpoint when there is none there).
    """
    out = []
    for j in range(len(means) - 1):
        m1, m2 = float(means[j]), float(means[j + 1])
        v1, v2 = float(variances[j]), float(variances[j + 1])
        c = math.log(weights[j] / math.sqrt(v1)) - math.log(weights[j + 1] / math.sqrt(v2))
        # a x² + b x + c0 = 0 from  -(x-m1)²/2v1 + (x-m2)²/2v2 + c = 0
        a = 0.5 / v2 - 0.5 / v1
        b = m1 / v1 - m2 / v2
        c0 = 0.5 * m2**2 / v2 - 0.5 * m1**2 / v1 + c
        roots = np.roots([a, b, c0]) if abs(a) > 1e-15 * (1 / v1 + 1 / v2) else np.array([-c0 / b])
        roots = roots[np.isreal(roots)].real
        inside = roots[(roots >= min(m1, m2)) & (roots <= max(m1, m2))]
        out.append(float(inside[0]) if inside.size else 0.5 * (m1 + m2))
    return np.asarray(out)


def _features(traced: TracedAtoms | Any, feature: Feature) -> np.ndarray:
    if not isinstance(traced, TracedAtoms):
        x = np.asarray(traced, dtype=np.float64)
        if x.ndim not in (1, 2):
            raise ValueError(f"values must be (n,) or (n, d), got shape {x.shape}.")
        return x
    if feature == "intensity":
        return traced.intensities
    if feature == "height":
        return traced.heights
    if feature == "intensity+width":
        if np.any(traced.intensities <= 0):
            raise ValueError("intensity+width classification needs positive intensities.")
        return np.stack([np.log(traced.intensities), np.log(traced.widths.mean(1))], 1)
    raise ValueError(
        f"feature must be 'intensity', 'height' or 'intensity+width', got {feature!r}."
    )


def classify_species(
    traced: TracedAtoms | Any,
    n_species: int,
    *,
    feature: Feature = "intensity",
    symbols: Sequence[str] | None = None,
) -> tuple[TracedAtoms | np.ndarray, SpeciesClassification]:
    """Classify traced sites into ``n_species`` species by a Gaussian mixture (Ren et al. 2020).

    Parameters
    ----------
    traced : TracedAtoms or array (n,) / (n, d)
        Sites from :func:`wedge.atoms.trace`, or the feature values themselves.
    n_species : int
        Number of species (>= 1); labels 0..n_species-1 in order of increasing mean feature.
    feature : {"intensity", "height", "intensity+width"}
        Integrated intensity (default; proportional to the integrated potential), fitted
        peak height, or both log intensity and log mean width (2D mixture).
    symbols : sequence of str, optional
        Element symbol per label, lightest first (e.g. ("O", "Si")), stored in the result.

    Returns
    -------
    (TracedAtoms with ``species`` set, SpeciesClassification), or (labels, classification)
    when ``traced`` is an array.
    """
    k = _check_count(n_species)
    if symbols is not None and len(symbols) != k:
        raise ValueError(f"give one symbol per species: {k} species but {len(symbols)} symbols.")
    x = _features(traced, feature)
    x2 = x[:, None] if x.ndim == 1 else x
    if k == 1:
        labels = np.zeros(len(x2), dtype=np.int64)
        mean, cov = x2.mean(0, keepdims=True), np.cov(x2.T).reshape(1, x2.shape[1], x2.shape[1])
        res = SpeciesClassification(
            labels, mean, cov, np.ones(1), np.empty(0), feature, float("nan")
        )
    else:
        w, mean, cov, ll = fit_gaussian_mixture(x2, k)
        if x2.shape[1] == 1:
            thr = gaussian_intersections(w, mean[:, 0], cov[:, 0, 0])
            labels = np.searchsorted(thr, x2[:, 0], side="right").astype(np.int64)
        else:
            thr = np.empty(0)
            labels = np.argmax(_log_gauss(x2, mean, cov) + np.log(w)[None], axis=1).astype(np.int64)
        res = SpeciesClassification(labels, mean, cov, w, thr, feature, ll)
    if isinstance(traced, TracedAtoms):
        syms = tuple(symbols) if symbols is not None else ("X",) * k
        return traced.with_species(res.labels, syms), res
    return res.labels, res
