"""Scoring atomic models against the truth (wedge.atoms.evaluation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from wedge.atoms.evaluation import bond_lengths, compare, match_atoms
from wedge.atoms.tracing import TracedAtoms
from wedge.atoms.xyz import AtomicModel


def diamond(n_cells: int = 3, a: float = 5.431) -> np.ndarray:
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    basis = np.concatenate([basis, basis + 0.25])
    g = np.arange(n_cells)
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return ((cells[:, None, :] + basis[None]) * a).reshape(-1, 3)


def brute_force_pairs(a: np.ndarray, b: np.ndarray, radius: float) -> tuple[int, float]:
    """Dense assignment: most pairs within radius, then least summed distance."""
    d = cdist(a, b)
    big = 1e6
    cost = np.where(d < radius, d - big, 2 * big)
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < 0
    return int(ok.sum()), float(d[r[ok], c[ok]].sum())


def test_matching_equals_dense_optimal_assignment(rng):
    truth = rng.uniform(0, 12, (300, 3))
    traced = np.concatenate(
        [truth[:270] + rng.normal(0, 0.35, (270, 3)), rng.uniform(0, 12, (25, 3))]
    )
    pairs = match_atoms(traced, truth, 0.8)
    n, total = brute_force_pairs(traced, truth, 0.8)
    assert len(pairs) == n
    assert np.linalg.norm(traced[pairs[:, 0]] - truth[pairs[:, 1]], axis=1).sum() == pytest.approx(
        total, rel=1e-9
    )
    assert len(np.unique(pairs[:, 0])) == len(pairs) == len(np.unique(pairs[:, 1]))


def test_known_displacements_give_known_errors(rng):
    truth = diamond()
    step = np.array([0.03, -0.04, 0.12])  # Å
    signs = rng.choice([-1.0, 1.0], size=(len(truth), 3))
    traced = truth + signs * step  # |error| per axis is exactly ``step``
    rep = compare(traced, truth, radius=1.0)
    assert rep.n_matched == len(truth)
    np.testing.assert_allclose(rep.axis_error_rms, np.abs(step) * 100, rtol=1e-9)
    assert rep.position_error_rms == pytest.approx(np.linalg.norm(step) * 100, rel=1e-9)
    assert rep.position_error_mean == pytest.approx(np.linalg.norm(step) * 100, rel=1e-9)
    assert rep.found_fraction == 1.0 and rep.false_positive_fraction == 0.0


def test_missing_and_false_atoms_are_counted(rng):
    truth = diamond()
    keep = np.ones(len(truth), bool)
    keep[rng.choice(len(truth), 7, replace=False)] = False
    extra = truth.max(0) + 10 + rng.uniform(0, 5, (4, 3))  # far from every true atom
    traced = np.concatenate([truth[keep] + rng.normal(0, 0.05, (keep.sum(), 3)), extra])
    rep = compare(traced, truth, radius=0.8)
    assert rep.n_matched == keep.sum()
    assert rep.found_fraction == pytest.approx(keep.sum() / len(truth))
    assert rep.false_positive_fraction == pytest.approx(4 / len(traced))
    row = rep.table_row()
    assert row["atoms_found_pct"] == pytest.approx(100 * keep.sum() / len(truth))


def test_global_shift_is_found_and_removed(rng):
    truth = diamond()
    noise = rng.normal(0, 0.02, truth.shape)
    shift = np.array([4.0, -2.5, 1.7])  # larger than the matching radius and the bond
    traced = truth + shift + noise
    absolute = compare(traced, truth, radius=0.8)
    assert absolute.n_matched < len(truth)
    rep = compare(traced, truth, radius=0.8, align=True)
    assert rep.n_matched == len(truth)
    np.testing.assert_allclose(rep.shift_applied, -shift - noise.mean(0), atol=1e-9)
    expect = np.sqrt(((noise - noise.mean(0)) ** 2).sum(1).mean()) * 100
    assert rep.rmsd_after_shift == pytest.approx(expect, rel=1e-9)


def test_rmsd_after_shift_removes_only_the_mean_offset(rng):
    truth = diamond()
    noise = rng.normal(0, 0.05, truth.shape)
    rep = compare(truth + 0.2 + noise, truth, radius=1.0)
    np.testing.assert_allclose(rep.mean_offset, 0.2 + noise.mean(0), atol=1e-12)
    assert rep.rmsd_after_shift == pytest.approx(
        np.sqrt(((noise - noise.mean(0)) ** 2).sum(1).mean()) * 100, rel=1e-9
    )


def test_species_agreement_for_models_and_traced_labels(rng):
    pos = diamond()
    numbers = np.where(rng.random(len(pos)) < 0.4, 8, 14)
    wrong = rng.choice(len(pos), 9, replace=False)
    guess = numbers.copy()
    guess[wrong] = np.where(numbers[wrong] == 8, 14, 8)
    truth = AtomicModel(pos, numbers, ())
    rep = compare(AtomicModel(pos, guess, ()), truth, radius=0.5)
    assert rep.species_correct_fraction == pytest.approx(1 - 9 / len(pos))
    # TracedAtoms labels 0, 1 map to the lighter, heavier true element (O, Si)
    tr = TracedAtoms(
        positions=pos,
        heights=np.ones(len(pos)),
        intensities=np.ones(len(pos)),
        widths=np.ones((len(pos), 3)),
        species=(guess == 14).astype(np.int64),
        voxel_size=0.3,
        volume_shape=(8, 8, 8),
    )
    assert compare(tr, truth, radius=0.5).species_correct_fraction == pytest.approx(
        1 - 9 / len(pos)
    )
    swapped = compare(tr, truth, radius=0.5, species_map={0: 14, 1: 8})
    assert swapped.species_correct_fraction == pytest.approx(9 / len(pos))


def test_bond_lengths_of_diamond():
    a = 5.431
    bonds = bond_lengths(diamond(4, a), 2.6)
    np.testing.assert_allclose(bonds, a * np.sqrt(3) / 4, rtol=1e-12)
    # interior atoms have 4 bonds: 2 bonds per atom in the bulk limit, fewer at surfaces
    assert 1.5 * len(diamond(4, a)) < len(bonds) < 2 * len(diamond(4, a))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="radius"):
        compare(np.zeros((2, 3)), np.ones((2, 3)), radius=0)
    with pytest.raises(ValueError, match="no atoms"):
        compare(np.zeros((2, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        compare(np.zeros((2, 2)), np.zeros((2, 3)))
