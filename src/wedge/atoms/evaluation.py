"""Scoring an atomic model against the truth (Ren et al. 2020, Table 1 and Fig. 4).

:func:`compare` matches traced atoms to true atoms one-to-one, maximising the number of pairs
closer than a radius and, among those matchings, minimising the summed distance (an optimal
assignment, solved per cluster of mutually reachable atoms). It reports the Table 1 columns
(position error, atoms found, false positives, correct species), the per-axis errors (the
missing wedge degrades z), the RMSD after the best global shift, and nearest-neighbour bond
lengths (pair distances below a cutoff) of both models.

Position error of one atom (Ren eq. 7): ``sqrt((x*-x̂)² + (y*-ŷ)² + (z*-ẑ)²)``. Positions are Å
in columns (x, y, z); errors are reported in pm.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .tracing import TracedAtoms

__all__ = ["ComparisonReport", "compare", "match_atoms", "bond_lengths"]


@dataclasses.dataclass(frozen=True, eq=False)
class ComparisonReport:
    """Result of :func:`compare` (lengths in pm unless noted; fractions in [0, 1]).

    Attributes
    ----------
    n_traced, n_true, n_matched : int
    found_fraction : float
        Matched true atoms / true atoms ("atoms found").
    false_positive_fraction : float
        Unmatched traced atoms / traced atoms ("false positives").
    species_correct_fraction : float
        Matched pairs whose species agree / matched pairs (NaN when species are unknown).
    position_error_rms : float
        RMS over matched atoms of the 3D distance (Ren eq. 7), pm.
    position_error_mean : float
        Mean 3D distance, pm.
    axis_error_rms : (3,)
        RMS error along x, y, z, pm.
    mean_offset : (3,)
        Mean (traced - true) over matched pairs, Å (a global shift between the frames).
    rmsd_after_shift : float
        RMS 3D error after subtracting ``mean_offset`` (the optimal global shift), pm.
    shift_applied : (3,)
        Shift (Å) added to the traced positions before matching (``align=True``), else 0.
    pairs : (n_matched, 2) int
        Indices (traced, true) of the matched pairs.
    bonds_traced, bonds_true : arrays, Å
        Distances of all atom pairs closer than ``bond_cutoff`` in each model.
    radius : float
        Matching radius, Å.
    """

    n_traced: int
    n_true: int
    n_matched: int
    found_fraction: float
    false_positive_fraction: float
    species_correct_fraction: float
    position_error_rms: float
    position_error_mean: float
    axis_error_rms: np.ndarray
    mean_offset: np.ndarray
    rmsd_after_shift: float
    shift_applied: np.ndarray
    pairs: np.ndarray
    bonds_traced: np.ndarray
    bonds_true: np.ndarray
    radius: float

    def table_row(self) -> dict[str, float]:
        """Ren et al. Table 1 columns (position error pm; percentages)."""
        return {
            "position_error_pm": self.position_error_rms,
            "atoms_found_pct": 100.0 * self.found_fraction,
            "false_positives_pct": 100.0 * self.false_positive_fraction,
            "correct_species_pct": 100.0 * self.species_correct_fraction,
        }

    def summary(self) -> str:
        """One human-readable paragraph."""
        ex, ey, ez = self.axis_error_rms
        return (
            f"{self.n_matched}/{self.n_true} true atoms found ({100 * self.found_fraction:.2f}%), "
            f"{self.n_traced - self.n_matched} false positives "
            f"({100 * self.false_positive_fraction:.2f}% of {self.n_traced} traced), "
            f"species correct {100 * self.species_correct_fraction:.2f}%; position error RMS "
            f"{self.position_error_rms:.2f} pm (x {ex:.2f}, y {ey:.2f}, z {ez:.2f}), "
            f"RMSD after global shift {self.rmsd_after_shift:.2f} pm."
        )


def _positions_species(model: Any, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(n, 3) positions in Å and species keys (atomic numbers or labels) or None."""
    if isinstance(model, TracedAtoms):
        return model.positions, None
    if hasattr(model, "positions") and hasattr(model, "numbers"):  # wedge.atoms.xyz.AtomicModel
        return np.asarray(model.positions, dtype=np.float64), np.asarray(model.numbers)
    if isinstance(model, tuple) and len(model) == 2:
        pos, spec = model
        return np.asarray(pos, dtype=np.float64), np.asarray(spec)
    pos = np.asarray(model, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(
            f"{what} must be TracedAtoms, an AtomicModel, (positions, species) or an (n, 3) "
            f"array of Å, got shape {pos.shape}."
        )
    return pos, None


def match_atoms(traced: np.ndarray, truth: np.ndarray, radius: float) -> np.ndarray:
    """Optimal one-to-one matching of two point sets within ``radius`` (Å).

    Among matchings using only pairs closer than ``radius``, takes one with the most pairs and,
    among those, the least summed distance. The problem splits into connected clusters of the
    radius graph; single pairs are taken directly, larger clusters are solved exactly with
    :func:`scipy.optimize.linear_sum_assignment`. Returns (m, 2) indices (traced, truth).
    """
    a = cKDTree(traced)
    dm = a.sparse_distance_matrix(cKDTree(truth), radius, output_type="coo_matrix")
    ti, tj, dd = dm.row, dm.col, dm.data
    if len(ti) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    n, m = len(traced), len(truth)
    graph = coo_matrix((np.ones(len(ti)), (ti, tj + n)), shape=(n + m, n + m))
    _, comp = connected_components(graph, directed=False)
    edge_comp = comp[ti]
    sizes = np.bincount(edge_comp, minlength=comp.max() + 1)
    single = sizes[edge_comp] == 1
    pairs = [np.stack([ti[single], tj[single]], 1)]
    big = np.flatnonzero(sizes > 1)
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.searchsorted(edge_comp[order], np.r_[big, big + 1].reshape(2, -1))
    big_cost = radius * (len(dd) + 1.0)  # any real pair beats leaving an atom unmatched
    for lo, hi in zip(*bounds, strict=True):  # loop over ambiguous clusters only
        e = order[lo:hi]
        ui, ri = np.unique(ti[e], return_inverse=True)
        uj, rj = np.unique(tj[e], return_inverse=True)
        cost = np.full((len(ui), len(uj)), 2 * big_cost)
        cost[ri, rj] = dd[e] - big_cost
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] < 0
        pairs.append(np.stack([ui[r[ok]], uj[c[ok]]], 1))
    return np.concatenate(pairs).astype(np.int64)


def bond_lengths(positions: Any, cutoff: float) -> np.ndarray:
    """Distances (Å) between every pair of atoms closer than ``cutoff`` (each pair once)."""
    pos = np.asarray(positions, dtype=np.float64)
    pairs = cKDTree(pos).query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0)
    return np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)


def _align_shift(
    traced: np.ndarray, truth: np.ndarray, radius: float, n_iter: int = 20
) -> np.ndarray:
    """Global shift (Å) to add to ``traced``: centroid start, then match-and-average rounds."""
    shift = truth.mean(0) - traced.mean(0)
    for _ in range(n_iter):
        pairs = match_atoms(traced + shift, truth, radius)
        if len(pairs) == 0:
            break
        step = (truth[pairs[:, 1]] - traced[pairs[:, 0]] - shift).mean(0)
        shift = shift + step
        if np.linalg.norm(step) < 1e-6:
            break
    return shift


def compare(
    traced: Any,
    truth: Any,
    radius: float = 1.0,
    *,
    species_map: dict[int, int] | None = None,
    align: bool = False,
    bond_cutoff: float = 3.0,
) -> ComparisonReport:
    """Score a traced atomic model against the true one (Ren et al. 2020, Table 1).

    Parameters
    ----------
    traced : TracedAtoms, AtomicModel, (positions, species) or (n, 3) array
        The model to score; positions in Å (x, y, z).
    truth : AtomicModel, (positions, species) or (m, 3) array
        The reference model in the same frame (unless ``align``).
    radius : float
        Matching radius in Å: a traced atom farther than this from every true atom is a
        false positive. Use about half the shortest bond length.
    species_map : dict, optional
        Traced label -> true species key (atomic number). Default for TracedAtoms: labels
        0, 1, ... map to the true species sorted by increasing atomic number (lighter atoms
        have lower intensity); for AtomicModels the atomic numbers are compared directly.
    align : bool
        First find the global shift that best superimposes the models (for models without an
        absolute frame) and match after applying it.
    bond_cutoff : float
        Å; pairs closer than this count as bonds in the bond-length distributions.

    Returns
    -------
    ComparisonReport
    """
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive distance in Å, got {radius}.")
    pos_t, spec_t = _positions_species(traced, "traced")
    pos_r, spec_r = _positions_species(truth, "truth")
    if len(pos_r) == 0:
        raise ValueError("the true model has no atoms; nothing to compare against.")
    if not (np.all(np.isfinite(pos_t)) and np.all(np.isfinite(pos_r))):
        raise ValueError("positions contain NaN or Inf.")
    if isinstance(traced, TracedAtoms):
        spec_t = traced.species
        if spec_r is not None:
            keys = np.unique(spec_r)
            mapping = species_map or {k: int(z) for k, z in enumerate(keys)}
            spec_t = np.array([mapping.get(int(s), -1) for s in traced.species])
    elif species_map is not None and spec_t is not None:
        spec_t = np.array([species_map.get(int(s), -1) for s in spec_t])

    shift = _align_shift(pos_t, pos_r, radius) if align and len(pos_t) else np.zeros(3)
    pos_s = pos_t + shift
    pairs = match_atoms(pos_s, pos_r, radius) if len(pos_t) else np.zeros((0, 2), np.int64)
    n_m = len(pairs)
    diff = pos_s[pairs[:, 0]] - pos_r[pairs[:, 1]] if n_m else np.zeros((0, 3))
    dist = np.linalg.norm(diff, axis=1)
    offset = diff.mean(0) if n_m else np.full(3, np.nan)
    nan = float("nan")
    if spec_t is not None and spec_r is not None and n_m:
        species_ok = float(np.mean(spec_t[pairs[:, 0]] == spec_r[pairs[:, 1]]))
    else:
        species_ok = nan
    pm = 100.0
    return ComparisonReport(
        n_traced=len(pos_t),
        n_true=len(pos_r),
        n_matched=n_m,
        found_fraction=n_m / len(pos_r),
        false_positive_fraction=(len(pos_t) - n_m) / len(pos_t) if len(pos_t) else 0.0,
        species_correct_fraction=species_ok,
        position_error_rms=float(np.sqrt((dist**2).mean())) * pm if n_m else nan,
        position_error_mean=float(dist.mean()) * pm if n_m else nan,
        axis_error_rms=np.sqrt((diff**2).mean(0)) * pm if n_m else np.full(3, nan),
        mean_offset=offset,
        rmsd_after_shift=float(np.sqrt(((diff - offset) ** 2).sum(1).mean())) * pm if n_m else nan,
        shift_applied=shift,
        pairs=pairs,
        bonds_traced=bond_lengths(pos_t, bond_cutoff) if len(pos_t) else np.zeros(0),
        bonds_true=bond_lengths(pos_r, bond_cutoff),
        radius=float(radius),
    )
