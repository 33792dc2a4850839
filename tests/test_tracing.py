"""Atom tracing (wedge.atoms.tracing) and species classification (wedge.atoms.classify)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from scipy.spatial import cKDTree

from wedge.atoms import TraceOptions, trace, trace_file
from wedge.atoms.classify import classify_species, fit_gaussian_mixture, gaussian_intersections
from wedge.atoms.evaluation import compare
from wedge.atoms.potential import potential_volume
from wedge.atoms.xyz import read_xyz


def gaussian_volume(shape, centres_idx, heights, sigmas) -> np.ndarray:
    """Analytic Gaussians sampled at voxel centres; centres (n, 3) as (z, y, x) indices."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    vol = np.zeros(shape)
    for c, h, s in zip(centres_idx, heights, sigmas, strict=True):  # a handful of atoms
        vol += h * np.exp(-0.5 * (((grid - c) / s) ** 2).sum(-1))
    return vol


def core_shell_model(rng, r_core=5.5, r_shell=11.0, a=5.431, d_min=1.55):
    """Crystalline Si (diamond cubic) core and amorphous SiO2-like shell (Ren et al. 2020).

    The shell is random sequential addition at the number density of silica (0.066 Å⁻³) with
    a minimum separation ``d_min`` Å, one third Si and two thirds O.
    """
    basis = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    basis = np.concatenate([basis, basis + 0.25])
    g = np.arange(-3, 4)
    cells = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    core = ((cells[:, None, :] + basis[None]) * a).reshape(-1, 3) - a / 8
    core = core[np.linalg.norm(core, axis=1) <= r_core]
    target = int(0.066 * 4 / 3 * np.pi * (r_shell**3 - r_core**3))
    shell = np.zeros((0, 3))
    for _ in range(200):
        c = rng.uniform(-r_shell, r_shell, (4000, 3))
        r = np.linalg.norm(c, axis=1)
        c = c[(r > r_core + 0.8) & (r <= r_shell)]
        dist, _ = cKDTree(np.concatenate([core, shell])).query(c)
        c = c[dist >= d_min]
        pairs = cKDTree(c).query_pairs(d_min, output_type="ndarray")
        bad = np.zeros(len(c), bool)
        bad[pairs.max(1) if len(pairs) else []] = True
        shell = np.concatenate([shell, c[~bad]])[:target]
        if len(shell) >= target:
            break
    numbers = np.concatenate(
        [np.full(len(core), 14), np.where(rng.random(len(shell)) < 1 / 3, 14, 8)]
    )
    return np.concatenate([core, shell]), numbers


# ----------------------------------------------------------------------------- tracing


def test_single_gaussian_recovers_subvoxel_position_width_height(rng):
    shape = (24, 26, 22)
    centre = np.array([11.3, 12.71, 10.45])
    sig = np.array([1.6, 1.1, 1.2])  # anisotropic, elongated along z like a missing wedge
    vol = gaussian_volume(shape, [centre], [5.0], [sig])
    tr = trace(vol, 0.4)
    assert len(tr) == 1
    assert np.abs(tr.indices[0] - centre).max() < 1e-3
    np.testing.assert_allclose(tr.widths[0], sig[::-1] * 0.4, rtol=1e-3)  # widths are (x, y, z)
    assert tr.heights[0] == pytest.approx(5.0, rel=1e-3)
    # the position in Å relative to the centre index (N-1)/2, columns (x, y, z)
    expect = (centre - (np.array(shape) - 1) / 2)[::-1] * 0.4
    np.testing.assert_allclose(tr.positions[0], expect, atol=1e-3)
    assert tr.converged


def test_overlapping_neighbours_are_separated_by_subtraction():
    # Two atoms 3.2 voxels apart with σ 1.2: their tails overlap; a fit that ignores the
    # neighbour is pulled towards it, the neighbour-subtracted fit is not.
    shape = (24, 24, 30)
    cs = np.array([[11.5, 12.2, 13.0], [11.5, 12.2, 16.2]])
    vol = gaussian_volume(shape, cs, [4.0, 2.5], [np.full(3, 1.2)] * 2)
    tr = trace(vol, 0.5, TraceOptions(min_distance=1.0, sweeps=3))
    assert len(tr) == 2
    order = np.argsort(tr.indices[:, 2])
    # independent fits of these atoms are biased by 0.36 voxel towards each other
    assert np.abs(tr.indices[order] - cs).max() < 0.05
    np.testing.assert_allclose(np.sort(tr.heights), [2.5, 4.0], rtol=0.01)


def test_sites_closer_than_min_distance_are_merged():
    shape = (20, 20, 24)
    cs = np.array([[9.5, 9.5, 10.0], [9.5, 9.5, 13.0]])  # 3 voxels = 1.2 Å apart
    vol = gaussian_volume(shape, cs, [3.0, 3.0], [np.full(3, 0.7)] * 2)
    assert len(trace(vol, 0.4, TraceOptions(min_distance=1.0))) == 2
    merged = trace(vol, 0.4, TraceOptions(min_distance=1.5))
    assert len(merged) == 1
    assert merged.indices[0] == pytest.approx([9.5, 9.5, 11.5], abs=0.05)


def test_torch_input_matches_numpy():
    vol = gaussian_volume((16, 16, 16), [[7.2, 8.1, 7.7]], [2.0], [np.full(3, 1.1)])
    a = trace(vol, 0.3)
    b = trace(torch.as_tensor(vol, dtype=torch.float32), 0.3)
    np.testing.assert_allclose(a.positions, b.positions, atol=1e-4)


def test_core_shell_potential_with_noise_meets_issue_figures():
    """Issue figures: ≥ 99.5 % found, ≤ 1 % false positives, ≥ 97 % species, ≤ 0.1 voxel."""
    rng = np.random.default_rng(7)
    pos, numbers = core_shell_model(rng)
    vs, n = 0.25, 100
    vol = potential_volume(pos, numbers, (n, n, n), vs, thermal_sigma=0.15)
    vol = vol + rng.normal(0.0, 0.05 * float(vol.max()), vol.shape)  # white noise, 5 % of max
    traced, cls = classify_species(trace(vol, vs), 2, symbols=("O", "Si"))
    rep = compare(traced, (pos, numbers), radius=0.7)
    assert len(pos) > 300 and (numbers == 8).sum() > 100
    assert rep.found_fraction >= 0.995
    assert rep.false_positive_fraction <= 0.01
    assert rep.species_correct_fraction >= 0.97
    assert rep.position_error_rms / 100.0 / vs <= 0.1  # pm -> Å -> voxels
    assert cls.thresholds.shape == (1,)


def test_missing_wedge_like_elongation_shows_in_z_error(rng):
    # Atoms elongated along z plus noise: the z error must be the largest per-axis error.
    shape = (40, 40, 40)
    g = np.arange(3)
    cs = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3) * 9.0 + 10.0
    cs = cs + rng.uniform(-0.5, 0.5, cs.shape)
    vol = gaussian_volume(shape, cs, np.full(len(cs), 3.0), [np.array([2.4, 1.0, 1.0])] * len(cs))
    vol += rng.normal(0, 0.1, shape)
    tr = trace(vol, 0.4)
    truth = (cs - (np.array(shape) - 1) / 2)[:, ::-1] * 0.4
    rep = compare(tr, truth, radius=1.0)
    assert rep.found_fraction == 1.0
    assert rep.axis_error_rms[2] > 1.5 * max(rep.axis_error_rms[:2])


# ----------------------------------------------------------------------------- bad input


def test_missing_voxel_size_is_a_clear_error():
    with pytest.raises(ValueError, match="voxel size"):
        trace(np.zeros((8, 8, 8)), None)
    with pytest.raises(ValueError, match="positive"):
        trace(np.zeros((8, 8, 8)), -1.0)


def test_thresholds_that_remove_every_site_are_a_clear_error():
    vol = gaussian_volume((16, 16, 16), [[7.5, 7.5, 7.5]], [1.0], [np.full(3, 1.0)])
    with pytest.raises(ValueError, match="removed every site"):
        trace(vol, 0.4, TraceOptions(min_height=10.0))
    with pytest.raises(ValueError, match="removed every site"):
        trace(np.zeros((16, 16, 16)), 0.4)


@pytest.mark.parametrize(
    "kwargs",
    [{"dog_sigmas": (1.0, 0.5)}, {"tolerance": 0.0}, {"fit_radius": 0}, {"min_distance": -1}],
)
def test_bad_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TraceOptions(**kwargs)


def test_bad_volumes_are_rejected():
    with pytest.raises(ValueError, match="3D"):
        trace(np.zeros((8, 8)), 0.4)
    with pytest.raises(ValueError, match="NaN"):
        trace(np.full((8, 8, 8), np.nan), 0.4)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_species_count_below_one_or_not_whole_is_rejected(k):
    with pytest.raises(ValueError, match="n_species"):
        classify_species(np.arange(10.0), k)


# ----------------------------------------------------------------------------- files


def test_trace_file_writes_xyz_and_asks_for_voxel_size(tmp_path):
    mrcfile = pytest.importorskip("mrcfile")
    cs = np.array([[8.0, 8.0, 6.0], [8.0, 8.0, 12.0], [8.0, 14.0, 9.0], [8.0, 14.0, 14.5]])
    vol = gaussian_volume((17, 20, 18), cs, [2.0, 4.0, 4.2, 2.1], [np.full(3, 1.0)] * 4).astype(
        np.float32
    )
    bare = tmp_path / "bare.mrc"
    with mrcfile.new(bare) as m:
        m.set_data(vol)
    with pytest.raises(ValueError, match="voxel size"):
        trace_file(bare, tmp_path / "a.xyz")
    with pytest.raises(ValueError, match="symbol"):
        trace_file(bare, tmp_path / "a.xyz", voxel_size=0.3, n_species=2)
    good = tmp_path / "good.mrc"
    with mrcfile.new(good) as m:
        m.set_data(vol)
        m.voxel_size = 0.3
    out = tmp_path / "atoms.xyz"
    traced = trace_file(good, out, n_species=2, symbols=("O", "Pt"))
    model = read_xyz(out)
    assert len(model) == 4
    expect = (cs - (np.array(vol.shape) - 1) / 2)[:, ::-1] * 0.3
    d, _ = cKDTree(model.positions).query(expect)
    assert d.max() < 1e-3
    assert sorted(model.symbols) == ["O", "O", "Pt", "Pt"]
    weak = np.argsort(traced.heights)[:2]
    assert [traced.element_symbols[i] for i in weak] == ["O", "O"]


# ----------------------------------------------------------------------------- classify


def test_gaussian_intersection_matches_numeric_root():
    w, m, v = np.array([0.7, 0.3]), np.array([1.0, 3.0]), np.array([0.25, 0.6])

    def diff(x):
        return w[0] * stats.norm.pdf(x, m[0], math.sqrt(v[0])) - w[1] * stats.norm.pdf(
            x, m[1], math.sqrt(v[1])
        )

    root = optimize.brentq(diff, m[0], m[1], xtol=1e-12)
    assert gaussian_intersections(w, m, v)[0] == pytest.approx(root, abs=1e-9)
    # equal weights and variances: the midpoint
    assert gaussian_intersections(np.ones(2) / 2, m, np.ones(2))[0] == pytest.approx(2.0)


def test_mixture_recovers_three_species(rng):
    means, sds, n = [10.0, 18.0, 30.0], [1.0, 1.5, 2.0], [500, 300, 200]
    x = np.concatenate([rng.normal(mu, s, k) for mu, s, k in zip(means, sds, n, strict=True)])
    truth = np.repeat([0, 1, 2], n)
    w, mu, cov, _ = fit_gaussian_mixture(x, 3)
    np.testing.assert_allclose(mu[:, 0], means, atol=0.3)
    np.testing.assert_allclose(np.sqrt(cov[:, 0, 0]), sds, rtol=0.15)
    np.testing.assert_allclose(w, np.array(n) / sum(n), atol=0.03)
    labels, res = classify_species(x, 3)
    assert res.thresholds.shape == (2,)
    assert np.mean(labels == truth) > 0.99


def test_two_feature_mixture_separates_by_width(rng):
    # Same intensities, different widths: only the 2D mixture can separate them.
    from wedge.atoms.tracing import TracedAtoms

    n = 400
    inten = rng.normal(100.0, 5.0, n)
    width = np.where(np.arange(n) < n // 2, 0.3, 0.5) * np.exp(rng.normal(0, 0.03, n))
    tr = TracedAtoms(
        positions=np.zeros((n, 3)),
        heights=inten,
        intensities=inten,
        widths=np.repeat(width[:, None], 3, 1),
        species=np.zeros(n, np.int64),
        voxel_size=0.3,
        volume_shape=(8, 8, 8),
    )
    out, _ = classify_species(tr, 2, feature="intensity+width")
    truth = (np.arange(n) >= n // 2).astype(int)
    acc = max(np.mean(out.species == truth), np.mean(out.species != truth))
    assert acc > 0.99
