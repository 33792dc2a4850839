"""Electron optics against textbook values and analytic results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wedge.optics import (
    Microscope,
    aberration_phase,
    gauss_hermite,
    interaction_parameter,
    point_resolution,
    scherzer_defocus,
    spatial_envelope,
    spatial_frequencies,
    temporal_envelope,
    transfer_function,
    wavelength,
    weak_phase_ctf,
)


@pytest.mark.parametrize(
    ("kv", "lam"),
    [(80, 0.04176), (100, 0.03701), (200, 0.02508), (300, 0.01969)],  # Williams & Carter Table 1.2
)
def test_wavelength_textbook(kv, lam):
    assert wavelength(kv * 1e3) == pytest.approx(lam, rel=2e-4)


@pytest.mark.parametrize(("kv", "sigma"), [(100, 9.2437e-4), (200, 7.2884e-4), (300, 6.5262e-4)])
def test_interaction_parameter_kirkland(kv, sigma):
    # Kirkland (2010) Table 5.1 values in rad/(V·Å)
    assert interaction_parameter(kv * 1e3) == pytest.approx(sigma, rel=1e-3)


def test_scherzer_and_point_resolution():
    cs = 1.2e7  # 1.2 mm
    lam = wavelength(200e3)
    assert scherzer_defocus(200e3, cs) == pytest.approx(np.sqrt(4 / 3 * cs * lam), rel=1e-12)
    # classic 0.66 Cs^1/4 λ^3/4 (0.658 exactly for the √(4/3) Scherzer condition)
    assert point_resolution(200e3, cs) == pytest.approx(0.66 * cs**0.25 * lam**0.75, rel=5e-3)
    # the transfer function's phase at Scherzer has its minimum -2π/3 and crosses 0 at 1/d
    mic = Microscope(energy=200e3, cs=cs)
    q = torch.linspace(0, 1.2 / point_resolution(200e3, cs), 20001, dtype=torch.float64)
    chi = aberration_phase(torch.zeros_like(q), q, scherzer_defocus(200e3, cs), mic).reshape(-1)
    assert float(chi.min()) == pytest.approx(-2 * np.pi / 3, rel=1e-6)
    zero = q[1:][(chi[1:] > 0) & (chi[:-1] <= 0)][0]
    assert float(zero) == pytest.approx(1 / point_resolution(200e3, cs), rel=1e-3)


@pytest.mark.parametrize(("df", "cs"), [(500.0, 0.0), (800.0, 1e7), (-300.0, 5e6)])
def test_first_ctf_zero(df, cs):
    mic = Microscope(energy=300e3, cs=cs)
    lam = mic.wavelength
    q = np.linspace(1e-4, 1.5, 300001)
    ctf = weak_phase_ctf(q, df, mic)
    first = q[1:][np.sign(ctf[1:]) != np.sign(ctf[:-1])][0]
    # analytic: χ(q) = ±π, i.e. ½ Cs λ³ u² - Δf λ u ∓ 1 = 0 with u = q²
    roots = []
    for n in (-1, 1):
        r = np.roots([0.5 * cs * lam**3, -df * lam, -n]) if cs else np.array([n / (-df * lam)])
        roots += [np.sqrt(u.real) for u in np.atleast_1d(r) if abs(u.imag) < 1e-12 and u.real > 0]
    assert first == pytest.approx(min(roots), rel=1e-4)


def test_temporal_envelope_is_focal_average():
    """E_t equals the modulus of the Gaussian focal average of exp(-iχ) (independent quadrature)."""
    mic = Microscope(energy=300e3, cs=1e7, focal_spread=40.0)
    qy, qx = spatial_frequencies((1, 256), 0.1)
    nodes, w = gauss_hermite(40, 40.0)
    h = transfer_function((1, 256), 0.1, 300.0 + nodes, mic)
    avg = (h * torch.as_tensor(w)[:, None, None]).sum(0)
    env = temporal_envelope(torch.sqrt(qx**2 + qy**2), mic)
    keep = env > 0.05  # where 40 quadrature points resolve the oscillating phase
    assert int(keep.sum()) > 20
    np.testing.assert_allclose(avg.abs()[keep].numpy(), env[keep].numpy(), atol=1e-6)


def test_spatial_envelope_is_tilt_average():
    """E_s at small angles equals the modulus of the beam-tilt average of H(q + k)."""
    mic = Microscope(energy=300e3, cs=1e7, illumination_semiangle=0.3)
    lam = mic.wavelength
    nodes, w = gauss_hermite(30, 0.3e-3 / lam)
    q = torch.linspace(0, 0.6, 61, dtype=torch.float64)
    acc = 0
    for ty, wy in zip(nodes, w, strict=True):
        for tx, wx in zip(nodes, w, strict=True):
            chi = aberration_phase(torch.zeros_like(q) + ty, q + tx, 600.0, mic)
            acc = acc + wy * wx * torch.exp(-1j * chi)
    env = spatial_envelope(q, 600.0, mic).reshape(-1)
    assert float(env.min()) < 0.8  # the envelope really damps
    np.testing.assert_allclose(acc.abs().reshape(-1).numpy(), env.numpy(), atol=2e-2)


def test_aperture_cuts_transfer():
    mic = Microscope(energy=300e3, aperture=20.0)
    h = transfer_function((64, 64), 0.2, [0.0, 100.0], mic)
    qy, qx = spatial_frequencies((64, 64), 0.2)
    outside = torch.sqrt(qx**2 + qy**2) > 20e-3 / mic.wavelength
    assert h.shape == (2, 64, 64)
    assert torch.all(h[:, outside] == 0) and torch.all(h[:, ~outside].abs() > 0.99)


@pytest.mark.parametrize("bad", [0.0, -200e3, float("nan")])
def test_bad_energy(bad):
    with pytest.raises(ValueError, match="energy"):
        wavelength(bad)
    with pytest.raises(ValueError, match="energy"):
        Microscope(energy=bad)
