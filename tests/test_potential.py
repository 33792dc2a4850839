"""Atomic potentials and XYZ files against analytic results and an independent parametrisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from conftest import shared_data
from wedge.atoms.potential import (
    TWO_PI_A0_E,
    atomic_number,
    potential_volume,
    projected_radial_potential,
    radial_potential,
    scattering_factor,
    slice_potentials,
)
from wedge.atoms.xyz import AtomicModel, read_xyz, write_xyz


def test_hydrogen_scattering_factor_is_bohr_radius():
    # Mott–Bethe: f_e(0) of the H ground state is a0 = 0.529 Å
    assert scattering_factor(0.0, "H") == pytest.approx(0.529177, rel=2e-3)


@pytest.mark.parametrize("el", ["C", "O", "Si", "Pd", "Pt", "Au"])
def test_lobato_agrees_with_kirkland(el):
    q = np.linspace(0, 2.0, 41)
    lob = scattering_factor(q, el, "lobato")
    kir = scattering_factor(q, el, "kirkland")
    np.testing.assert_allclose(lob, kir, rtol=0.035)


def test_radial_potential_analytic_vs_fourier_integral():
    r = np.array([0.3, 0.6, 1.0, 1.5, 2.0])
    analytic = radial_potential(r, 78)
    numeric = radial_potential(r, 78, sigma=1e-3)  # inverse Fourier integral of f_e
    np.testing.assert_allclose(numeric, analytic, rtol=2e-3)


def test_projected_potential_is_z_integral():
    for R in (0.2, 0.7, 1.5):
        val, _ = integrate.quad(
            lambda z, R=R: radial_potential(np.hypot(R, z), 14), -30, 30, points=[0.0], limit=200
        )
        assert projected_radial_potential(R, 14) == pytest.approx(val, rel=1e-5)


@pytest.mark.parametrize("sigma", [0.0, 0.1])
def test_volume_integral_and_peak(sigma):
    d, n = 0.25, 48
    pos = np.array([[0.3, -0.7, 0.2], [-2.1, 1.4, -0.95]])
    v = potential_volume(pos, ["C", "Pt"], (n, n, n), d, thermal_sigma=sigma)
    expected = TWO_PI_A0_E * (scattering_factor(0, 6) + scattering_factor(0, 78))
    assert v.dtype == np.float32 and v.shape == (n, n, n)
    assert v.sum() * d**3 == pytest.approx(expected, rel=5e-3)
    # the Pt peak sits at the voxel nearest (x, y, z) = (-2.1, 1.4, -0.95): index (N-1)/2 + p/d
    k, j, i = np.unravel_index(np.argmax(v), v.shape)
    np.testing.assert_array_equal((i, j, k), np.round(np.array([-2.1, 1.4, -0.95]) / d + 23.5))


def test_projected_volume_matches_analytic_projection():
    d, n = 0.2, 64
    v = potential_volume(np.array([[0.05, -0.1, 0.0]]), [29], (n, n, n), d, projected=True)
    proj = v.sum(0)
    x = (np.arange(n) - (n - 1) / 2) * d
    R = np.hypot(x[None, :] - 0.05, x[:, None] + 0.1)
    ring = (R > 1.2) & (R < 3.0)
    np.testing.assert_allclose(
        proj[ring], projected_radial_potential(R[ring], 29), rtol=0.03, atol=2e-3
    )


def test_slice_potentials_point_values_slabs_and_volume():
    rng = np.random.default_rng(3)
    d, n = 0.25, 48
    # pixel values are the analytic projected potential (minus the small cutoff taper)
    one = slice_potentials(np.array([[0.07, -0.11, 0.0]]), [79], (1, n, n), d, 2.0)[0]
    x = (np.arange(n) - (n - 1) / 2) * d
    R = np.hypot(x[None, :] - 0.07, x[:, None] + 0.11)
    ring = (R > 0.3) & (R < 1.5)
    np.testing.assert_allclose(one[ring], projected_radial_potential(R[ring], 79), rtol=0.02)
    pos = rng.uniform(-4, 4, (6, 3))
    els = [6, 8, 14, 29, 46, 78]
    # atoms land in the slab holding their z
    for p, z in zip(pos, els, strict=True):
        alone = slice_potentials(p[None], [z], (4, n, n), d, n * d / 4)
        assert np.argmax(alone.sum((1, 2))) == int(np.floor(p[2] / (n * d / 4) + 2))
    vol = potential_volume(pos, els, (n, n, n), d, projected=True).sum(0)
    # the same function (blurred by the voxel variance d²/12) sampled two independent ways
    blurred = slice_potentials(pos, els, (4, n, n), d, n * d / 4, thermal_sigma=d / np.sqrt(12))
    assert np.corrcoef(vol.ravel(), blurred.sum(0).ravel())[0, 1] > 0.99


def test_bad_input():
    with pytest.raises(ValueError, match="unknown element"):
        atomic_number("Xx")
    with pytest.raises(ValueError, match="outside the box"):
        potential_volume(np.array([[0, 0, 7.0]]), [6], (20, 20, 20), 0.5)
    with pytest.raises(ValueError, match="voxel_size"):
        potential_volume(np.zeros((1, 3)), [6], (20, 20, 20), 0.0)
    with pytest.raises(ValueError, match="slice_thickness"):
        slice_potentials(np.zeros((1, 3)), [6], (2, 20, 20), 0.5, -1.0)
    with pytest.raises(ValueError, match="atomic numbers"):
        potential_volume(np.zeros((2, 3)), [6], (20, 20, 20), 0.5)


def test_read_pdpt_models():
    m = read_xyz(shared_data("pdpt-atomic-models", "EPB.xyz"))
    assert len(m) == 5377 and set(m.symbols) == {"Pd", "Pt"}
    assert m.positions.shape == (5377, 3)
    np.testing.assert_allclose(m.positions[0], [-20.3896, 3.11772, 1.77094])
    assert m.numbers[0] == 78


def test_xyz_roundtrip_plain_and_extended(tmp_path):
    m = AtomicModel(np.array([[0.0, 1.0, 2.0], [-1.5, 0.25, 3.125]]), np.array([79, 8]), ())
    for ext in (False, True):
        p = tmp_path / f"m{ext}.xyz"
        write_xyz(p, m, extended=ext)
        back = read_xyz(p)
        np.testing.assert_allclose(back.positions, m.positions, atol=1e-6)
        assert back.symbols == ("Au", "O")
    # extended XYZ with extra columns before the positions
    p = tmp_path / "ext.xyz"
    p.write_text(
        '2\nLattice="10 0 0 0 10 0 0 0 10" Properties=id:I:1:species:S:1:pos:R:3 pbc="T T T"\n'
        "1 Si 0.5 0.5 0.5\n2 78 1.0 2.0 3.0\n"
    )
    e = read_xyz(p)
    assert e.symbols == ("Si", "Pt")
    np.testing.assert_allclose(e.positions[1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="does not exist"):
        read_xyz(tmp_path / "missing.xyz")
