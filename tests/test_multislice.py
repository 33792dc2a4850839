"""Multislice forward model: physical invariants, linear-CTF limit, gradients, simulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wedge.atoms.potential import potential_volume
from wedge.atoms.xyz import AtomicModel
from wedge.geometry import euler_to_matrix
from wedge.hrtem import hrtem_tilt_series, tilt_angles, write_hrtem_series
from wedge.multislice import (
    MultisliceOptions,
    band_limit_mask,
    bin_slices,
    exit_wave,
    multislice_gradient,
    multislice_images,
    multislice_intensity,
    propagate,
    propagator,
    rotate_volume,
)
from wedge.optics import (
    Microscope,
    gauss_hermite,
    transfer_function,
    wavelength,
    weak_phase_ctf,
)

LAM = wavelength(300e3)


def _blob(shape, centre_xyz, width=1.2):
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape), indexing="ij")
    r2 = (xx - centre_xyz[0]) ** 2 + (yy - centre_xyz[1]) ** 2 + (zz - centre_xyz[2]) ** 2
    return np.exp(-r2 / (2 * width**2)).astype(np.float32)


# ------------------------------------------------------------------ rotation
def test_rotate_quarter_turn_equals_rot90(rng):
    v = torch.as_tensor(rng.random((9, 7, 9)), dtype=torch.float32)
    out = rotate_volume(v, (0.0, 90.0, 0.0))
    # R = Y(90°): (x, y, z) -> (z, y, -x); W(q) = V(Rᵀq)
    expected = torch.flip(v.permute(2, 1, 0), dims=[0])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("euler", [(0.0, 35.0, 0.0), (20.0, 35.0, -10.0)])
def test_rotated_blob_moves_to_R_p(euler):
    p = np.array([4.0, -3.0, 2.0])
    v = _blob((33, 31, 35), p)
    w = rotate_volume(torch.as_tensor(v), euler).numpy()
    grids = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in w.shape), indexing="ij")
    com = np.array([(g * w).sum() / w.sum() for g in grids])[::-1]  # (x, y, z)
    rp = euler_to_matrix(torch.deg2rad(torch.tensor(euler, dtype=torch.float64))).numpy() @ p
    np.testing.assert_allclose(com, rp, atol=0.05)
    # summing over z is the ray projection: image position (R p)[:2]
    img = w.sum(0)
    j, i = np.unravel_index(np.argmax(img), img.shape)
    assert abs(i - (35 - 1) / 2 - rp[0]) <= 0.5 and abs(j - (31 - 1) / 2 - rp[1]) <= 0.5


def test_rotated_volume_matches_potential_of_rotated_atoms():
    rng = np.random.default_rng(5)
    pos = rng.uniform(-3, 3, (8, 3))
    d, n = 0.3, 40
    e = (10.0, -25.0, 5.0)
    r = euler_to_matrix(torch.deg2rad(torch.tensor(e, dtype=torch.float64))).numpy()
    v = potential_volume(pos, [29] * 8, (n, n, n), d, thermal_sigma=0.15)
    rotated_atoms = potential_volume(pos @ r.T, [29] * 8, (n, n, n), d, thermal_sigma=0.15)
    w = rotate_volume(torch.as_tensor(v), e).numpy()
    assert np.corrcoef(w.ravel(), rotated_atoms.ravel())[0, 1] > 0.98


def test_bin_slices_ren_a11():
    v = torch.arange(7 * 2 * 2, dtype=torch.float32).reshape(7, 2, 2)
    b = bin_slices(v, 3)
    assert b.shape == (3, 2, 2)
    torch.testing.assert_close(b[0], v[0:3].sum(0))
    torch.testing.assert_close(b[2], v[6])


# ------------------------------------------------------------------ propagation
def _band_limited_wave(rng, n=64, d=0.2):
    w = torch.as_tensor(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return propagate(w.to(torch.complex128), band_limit_mask((n, n), d).to(torch.complex128))


def test_empty_specimen_keeps_norm(rng):
    psi = _band_limited_wave(rng)
    p = propagator((64, 64), 0.2, 2.0, LAM)
    out = psi
    for _ in range(25):
        out = propagate(out, p)
    assert float(out.abs().square().sum()) == pytest.approx(
        float(psi.abs().square().sum()), rel=1e-10
    )
    # and an empty volume gives vacuum intensity 1 at every defocus
    img = multislice_images(np.zeros((10, 32, 32)), 0.3, [0.0, 500.0], Microscope(cs=1e7))
    np.testing.assert_allclose(img, 1.0, atol=1e-5)


def test_propagation_composes(rng):
    psi = _band_limited_wave(rng)
    a = propagate(
        propagate(psi, propagator((64, 64), 0.2, 37.0, LAM)), propagator((64, 64), 0.2, 81.0, LAM)
    )
    b = propagate(psi, propagator((64, 64), 0.2, 118.0, LAM))
    torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_defocus_equals_backward_propagation(rng):
    """H at defocus Δf (optics) equals Fresnel propagation by -Δf (angular spectrum)."""
    mic = Microscope(energy=300e3)
    h = transfer_function((64, 64), 0.2, 200.0, mic)[0]
    p = propagator((64, 64), 0.2, -200.0, LAM, band_limit=1.0)
    inside = band_limit_mask((64, 64), 0.2, 0.4).bool()  # q <= 1 / Å
    # paraxial vs exact kernels differ by πλ³Δz q⁴/4 <= 1.2e-3 rad for q <= 1 / Å
    assert float((h - p)[inside].abs().max()) < 2e-3


# ------------------------------------------------------------------ physics limits
def test_weak_phase_object_follows_linear_ctf(rng):
    n, d = 128, 0.25
    mic = Microscope(energy=300e3, cs=1.3e7)
    v = np.zeros((1, n, n), np.float32)
    # peak phase σ v d ≈ 0.01 rad: second-order terms are ~1 % of the linear contrast
    v[0] = (
        60 * _blob((1, n, n), (5.0, -3.0, 0.0), 1.0)[0]
        + 30 * _blob((1, n, n), (-9.0, 12.0, 0.0), 0.7)[0]
    )
    opts = MultisliceOptions(band_limit=1.0)
    df = 600.0
    img = multislice_images(v, d, df, mic, options=opts)[0]
    # linear theory: I = 1 + F⁻¹[σ v̂ · 2 sin χ]; the slab propagates d after transmission,
    # equivalent to a defocus reduced by d
    vhat = np.fft.fft2(v[0] * d)
    q = np.hypot(*np.meshgrid(np.fft.fftfreq(n, d), np.fft.fftfreq(n, d), indexing="ij"))
    lin = 1 + np.fft.ifft2(mic.sigma * vhat * weak_phase_ctf(q, df - d, mic)).real
    contrast = lin - 1
    assert np.abs(contrast).max() > 1e-4
    assert np.abs(img - lin).max() < 0.02 * np.abs(contrast).max()


def test_single_vs_multislice_thin_and_thick():
    mic = Microscope(energy=300e3, cs=1e7)
    n, d = 48, 0.3
    rng = np.random.default_rng(2)
    thin = potential_volume(rng.uniform(-6, 6, (6, 3)) * [1, 1, 0.05], [6] * 6, (4, n, n), d)
    thick_pos = rng.uniform(-6, 6, (600, 3)) * [1, 1, 2]
    thick = potential_volume(thick_pos, [79] * 600, (84, n, n), d, cutoff=2.5)  # 25 Å of Au
    for vol, same in ((thin, True), (thick, False)):
        a = multislice_images(vol, d, [100.0], mic)
        b = multislice_images(vol, d, [100.0], mic, options=MultisliceOptions(mode="single"))
        rel = np.linalg.norm(a - b) / np.linalg.norm(a - 1)
        assert (rel < 0.02) if same else (rel > 0.2), rel


def test_defocus_batch_equals_single_calls():
    mic = Microscope(energy=200e3, cs=1e7, aperture=25.0)
    v = 5 * _blob((8, 32, 32), (2.0, 1.0, 0.0), 2.0)
    batch = multislice_images(v, 0.4, [0.0, 150.0, -80.0], mic)
    for k, df in enumerate([0.0, 150.0, -80.0]):
        np.testing.assert_allclose(batch[k], multislice_images(v, 0.4, df, mic)[0], atol=1e-6)


@pytest.mark.parametrize("nz", [7, 6])
def test_exit_wave_through_transfer_function_equals_images(nz):
    """|F⁻¹[H(Δf) F ψ_exit]|² equals multislice_images at Δf, also for a short last slab."""
    mic = Microscope(energy=300e3, cs=1e7)
    d, n = 0.4, 32
    vol = 300 * _blob((nz, n, n), (2.0, -1.5, 0.5), 1.5) + 200 * _blob((nz, n, n), (-4, 3, -1), 1)
    opts = MultisliceOptions(n_bin=3)
    df = [0.0, 150.0, -300.0]
    psi = exit_wave(vol, d, mic, options=opts)
    h = transfer_function((n, n), d, df, mic).numpy()
    via_exit = np.abs(np.fft.ifft2(h * np.fft.fft2(psi)[None])) ** 2
    img = multislice_images(vol, d, df, mic, options=opts)
    assert np.abs(img - 1).max() > 0.05  # enough contrast for a misplaced exit plane to show
    np.testing.assert_allclose(via_exit, img, atol=1e-5, rtol=0)


# ------------------------------------------------------------------ gradient
def _autograd_reference(vol, d, df, mic, opts, euler):
    """Plain-torch multislice differentiated by autograd (independent of the custom backward)."""
    w = vol if euler is None else rotate_volume(vol, euler)
    slabs = bin_slices(w, opts.n_bin) * d
    if opts.mode == "single":
        slabs = slabs.sum(0, keepdim=True)
    n_z = vol.shape[0]
    dz = n_z * d / 2 if opts.mode == "single" else opts.n_bin * d
    p = propagator(tuple(vol.shape[1:]), d, dz, mic.wavelength).to(torch.complex64)
    psi = torch.ones(vol.shape[1:], dtype=torch.complex64)
    for m in range(slabs.shape[0]):
        t = torch.exp(1j * mic.sigma * (1 + 1j * opts.absorption) * slabs[m])
        psi = torch.fft.ifft2(torch.fft.fft2(t * psi) * p)
    h = transfer_function(tuple(vol.shape[1:]), d, df, mic).to(torch.complex64)
    return torch.fft.ifft2(torch.fft.fft2(psi)[None] * h).abs() ** 2


@pytest.mark.parametrize(
    ("opts", "euler"),
    [
        (MultisliceOptions(), None),
        (MultisliceOptions(checkpoint=4), None),
        (MultisliceOptions(n_bin=4), (0.0, 20.0, 0.0)),
        (MultisliceOptions(mode="single"), None),
        (MultisliceOptions(absorption=0.1), (15.0, -30.0, 5.0)),
    ],
)
def test_gradient_matches_autograd(opts, euler):
    g = torch.Generator().manual_seed(0)
    vol = (torch.rand((12, 24, 24), generator=g) * 30).requires_grad_(True)
    meas = torch.rand((2, 24, 24), generator=g) + 0.5
    mic = Microscope(energy=300e3, cs=1e7)
    df = [50.0, -120.0]
    pred = multislice_intensity(vol, 0.5, df, mic, euler=euler, options=opts)
    (g1,) = torch.autograd.grad(((pred - meas) ** 2).sum(), vol)
    ref = _autograd_reference(vol, 0.5, df, mic, opts, euler)
    (g2,) = torch.autograd.grad(((ref - meas) ** 2).sum(), vol)
    torch.testing.assert_close(pred.detach(), ref.detach(), atol=1e-5, rtol=0)
    assert float((g1 - g2).abs().max()) <= 1e-4 * float(g2.abs().max())


def test_multislice_gradient_amplitude_loss_and_bad_defocus():
    rng = np.random.default_rng(1)
    vol = rng.random((6, 16, 16)).astype(np.float32) * 10
    mic = Microscope(cs=1e7)
    meas = multislice_images(vol * 0.9, 0.5, [0.0, 100.0], mic)
    loss, grad = multislice_gradient(vol, meas, 0.5, [0.0, 100.0], mic)
    assert isinstance(grad, np.ndarray) and grad.shape == vol.shape and loss > 0
    # directional derivative against a central finite difference (float64 not needed: big step)
    dvol = rng.normal(size=vol.shape).astype(np.float32)
    eps = 1e-2
    lp, _ = multislice_gradient(vol + eps * dvol, meas, 0.5, [0.0, 100.0], mic)
    lm, _ = multislice_gradient(vol - eps * dvol, meas, 0.5, [0.0, 100.0], mic)
    assert (lp - lm) / (2 * eps) == pytest.approx(float((grad * dvol).sum()), rel=2e-2)
    with pytest.raises(ValueError, match="one defocus per image"):
        multislice_gradient(vol, meas, 0.5, [0.0], mic)


def test_multislice_gradient_leaves_the_callers_tensor_untouched():
    g = torch.Generator().manual_seed(3)
    vol = torch.rand((4, 12, 12), generator=g, dtype=torch.float32) * 10
    before = vol.clone()
    meas = torch.ones((1, 12, 12))
    _, grad = multislice_gradient(vol, meas, 0.5, [50.0], Microscope(cs=1e7), device="cpu")
    assert not vol.requires_grad and vol.grad is None
    torch.testing.assert_close(vol, before, atol=0, rtol=0)
    assert isinstance(grad, torch.Tensor) and not grad.requires_grad


# ------------------------------------------------------------------ simulation
def test_hrtem_tilt_series_small():
    model = AtomicModel(np.array([[0.0, 0.0, 0.0], [2.0, -1.0, 1.0]]), np.array([78, 46]), ())
    mic = Microscope(cs=1e7, focal_spread=30.0, illumination_semiangle=0.1)
    s = hrtem_tilt_series(
        model,
        angles=[-30.0, 0.0, 30.0],
        defocus=[100.0, 400.0],
        microscope=mic,
        voxel_size=0.4,
        shape=(24, 24, 24),
        dose=2e4,
        dose_mode="total",
        focal_samples=3,
        tilt_samples=2,
    )
    assert s.images.shape == (3, 2, 24, 24) and s.truth.shape == (24, 24, 24)
    assert s.dose == pytest.approx(2e4 / 6)
    assert abs(float(s.images.mean()) - 1.0) < 0.05
    empty = hrtem_tilt_series(
        AtomicModel(np.zeros((0, 3)), np.zeros(0, int), ()),
        angles=[0.0],
        defocus=[100.0],
        voxel_size=0.4,
        shape=(8, 16, 16),
    )
    np.testing.assert_allclose(empty.images, 1.0, atol=1e-5)
    np.testing.assert_array_equal(
        tilt_angles((-60, 60), 15, missing_wedge=(-40, 40)), [-60, -45, 45, 60]
    )


def _hrtem_specimen(nz=4, n=32):
    """Two smooth blobs (V): band-limited well inside the propagator's 2/3-Nyquist limit."""
    return 200 * _blob((nz, n, n), (3.0, -2.0, 0.0), 3.0) + 150 * _blob((nz, n, n), (-5, 4, 0), 2.5)


def test_hrtem_focal_spread_is_gauss_hermite_average_of_coherent_images():
    n, d, df, fs = 32, 0.4, np.array([100.0, 400.0]), 40.0
    vol = _hrtem_specimen(6, n)
    mic = Microscope(cs=1e7, focal_spread=fs)
    sim = hrtem_tilt_series(
        vol, angles=[0.0], defocus=df, microscope=mic, voxel_size=d, focal_samples=5, device="cpu"
    ).images[0]
    nodes, weights = gauss_hermite(5, fs)
    average = sum(
        w * multislice_images(vol, d, df + x, mic, device="cpu")
        for x, w in zip(nodes, weights, strict=True)
    )
    coherent = multislice_images(vol, d, df, mic, device="cpu")
    np.testing.assert_allclose(sim, average, atol=1e-5, rtol=0)
    assert np.abs(sim - coherent).max() > 100 * 1e-5  # the focal spread blurs measurably


def _tilted_plane_wave_images(vol, d, df, mic, k_yx):
    """Plain NumPy multislice of an incident plane wave exp(2πi k·r) (k on the FFT grid, 1/Å),
    propagator band-limited to 2/3 Nyquist, images with H = exp(−iχ), χ from Kirkland 3.42."""
    nz, n = vol.shape[0], vol.shape[1]
    lam = mic.wavelength
    qy, qx = np.meshgrid(np.fft.fftfreq(n, d), np.fft.fftfreq(n, d), indexing="ij")
    q2 = qy**2 + qx**2
    y, x = np.meshgrid(np.arange(n) * d, np.arange(n) * d, indexing="ij")
    psi = np.exp(2j * np.pi * (k_yx[0] * y + k_yx[1] * x))
    prop = (q2 <= (1 / (3 * d)) ** 2) * np.exp(2j * np.pi * d * (np.sqrt(lam**-2 - q2) - 1 / lam))
    for m in range(nz):
        psi = np.fft.ifft2(np.fft.fft2(np.exp(1j * mic.sigma * d * vol[m]) * psi) * prop)
    chi = np.pi * lam * q2 * (-np.asarray(df)[:, None, None] + 0.5 * mic.cs * lam**2 * q2)
    return np.abs(np.fft.ifft2(np.exp(-1j * chi) * np.fft.fft2(psi))) ** 2


def test_hrtem_beam_divergence_is_gauss_hermite_average_over_tilted_plane_waves():
    """With 3 nodes per axis at 0, ±√3 s/λ, choose s so that ±√3 s/λ = ±1/(N d): the nodes
    are grid frequencies and each tilted plane wave can be simulated directly."""
    n, d, df = 32, 0.4, np.array([150.0, 500.0])
    vol = _hrtem_specimen(4, n)
    s_mrad = 1e3 * LAM / (np.sqrt(3) * n * d)
    mic = Microscope(cs=1e7, illumination_semiangle=s_mrad)
    sim = hrtem_tilt_series(
        vol, angles=[0.0], defocus=df, microscope=mic, voxel_size=d, tilt_samples=3, device="cpu"
    ).images[0]
    _, w = gauss_hermite(3, 1.0)
    k = np.array([-1.0, 0.0, 1.0]) / (n * d)
    average = sum(
        w[a] * w[b] * _tilted_plane_wave_images(vol, d, df, mic, (k[a], k[b]))
        for a in range(3)
        for b in range(3)
    )
    coherent = _tilted_plane_wave_images(vol, d, df, mic, (0.0, 0.0))
    np.testing.assert_allclose(sim, average, atol=1e-5, rtol=0)
    assert np.abs(sim - coherent).max() > 100 * 1e-5


def _circular_shift(a, b):
    """Shift (y, x) in pixels that moves image a onto image b: peak of the circular
    cross-correlation, refined by a parabola through the peak and its neighbours."""
    n = np.array(a.shape)
    cc = np.fft.ifft2(np.conj(np.fft.fft2(a - a.mean())) * np.fft.fft2(b - b.mean())).real
    peak = np.array(np.unravel_index(np.argmax(cc), cc.shape))
    out = []
    for ax in range(2):
        step = np.eye(2, dtype=int)[ax]
        lo, c0, hi = (cc[tuple((peak + s * step) % n)] for s in (-1, 0, 1))
        whole = (peak[ax] + n[ax] // 2) % n[ax] - n[ax] // 2
        out.append(whole + 0.5 * (lo - hi) / (lo - 2 * c0 + hi))
    return np.array(out)


def test_beam_tilt_shifts_defocused_image_by_defocus_times_tan_tilt():
    """A plane wave tilted by α (direction k̂) through a thin phase object: the image at
    defocus Δf (underfocus, i.e. the wave propagated back by Δf) is the untilted one moved
    by (d − Δf) tan α along k̂ (d: the slab's propagation to the exit plane; Cs = 0)."""
    n, d, df = 64, 0.25, 600.0
    mic = Microscope(energy=300e3)
    vol = torch.as_tensor(3000 * _blob((1, n, n), (0.0, 0.0, 0.0), 2.5))  # ~0.5 rad peak
    shift_px = np.array([-3.4, 6.3])  # (y, x): not whole pixels
    tan_tilt = shift_px * d / (d - df)
    k = np.sin(np.arctan(tan_tilt)) / mic.wavelength  # |k| λ = sin α per axis (α ≪ 1)
    straight = multislice_intensity(vol, d, df, mic)[0].numpy()
    tilted = multislice_intensity(vol, d, df, mic, tilt=(float(k[0]), float(k[1])))[0].numpy()
    assert np.abs(straight - 1).max() > 0.1
    np.testing.assert_allclose(_circular_shift(straight, tilted), shift_px, atol=0.05)


def test_hrtem_shot_noise_is_poisson_at_the_dose():
    """Vacuum: counts = image · D d² per pixel have mean = variance = D d² (within 4 standard
    errors over the pixels); a blob specimen: each pixel is Poisson about the noise-free
    image, and dose=None returns the noise-free images themselves."""
    d, dose = 0.5, 50.0
    lam_px = dose * d * d  # 12.5 expected counts per pixel
    kw = dict(angles=[0.0, 10.0], defocus=[0.0, 200.0], voxel_size=d, device="cpu")
    flat = hrtem_tilt_series(np.zeros((4, 48, 48), np.float32), dose=dose, seed=3, **kw)
    counts = flat.images.astype(np.float64) * lam_px
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)  # whole electrons
    m = counts.size
    assert abs(counts.mean() - lam_px) < 4 * np.sqrt(lam_px / m)
    assert abs(counts.var(ddof=1) - lam_px) < 4 * np.sqrt((lam_px + 2 * lam_px**2) / m)
    total = hrtem_tilt_series(
        np.zeros((4, 48, 48), np.float32), dose=4 * dose, dose_mode="total", seed=4, **kw
    )
    assert total.dose == pytest.approx(dose)  # shared by 2 tilts × 2 defocus values
    c_total = total.images.astype(np.float64) * lam_px
    assert abs(c_total.mean() - lam_px) < 4 * np.sqrt(lam_px / m)

    mic = Microscope(cs=1e7)
    vol = _hrtem_specimen(4, 48)
    clean = hrtem_tilt_series(vol, microscope=mic, dose=None, **kw)
    assert clean.dose is None
    for i, angle in enumerate(kw["angles"]):
        expected = multislice_images(vol, d, kw["defocus"], mic, euler=(0, angle, 0))
        np.testing.assert_allclose(clean.images[i], expected, atol=1e-5, rtol=0)
    noisy = hrtem_tilt_series(vol, microscope=mic, dose=dose, seed=5, **kw)
    mean_counts = clean.images.astype(np.float64) * lam_px
    z = (noisy.images * lam_px - mean_counts) / np.sqrt(mean_counts)
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * np.sqrt((2 + 1 / mean_counts.min()) / z.size)


def test_hrtem_atoms_are_binned_into_slabs_like_box_voxels():
    """n_bin = 3, Z = 7 (short last slab): bin_slices puts voxels 0-2 of the box in slab 0.
    An atom in voxel 2 and the same atom in voxel 0 are both transmitted at the top of
    slab 0, so their images are identical."""
    d, nz = 0.4, 7
    z_voxel = lambda i: (i - (nz - 1) / 2) * d  # noqa: E731  voxel centre, Å
    kw = dict(
        angles=[0.0],
        defocus=[0.0, 200.0],
        microscope=Microscope(cs=1e7),
        voxel_size=d,
        shape=(nz, 24, 24),
        n_bin=3,
        device="cpu",
    )
    images = [
        hrtem_tilt_series(
            AtomicModel(np.array([[0.5, -0.3, z_voxel(i)]]), np.array([79]), ()), **kw
        ).images
        for i in (0, 2)
    ]
    assert np.abs(images[0] - 1).max() > 0.01
    np.testing.assert_allclose(images[1], images[0], atol=1e-6, rtol=0)


def test_write_hrtem_series(tmp_path):
    import mrcfile

    s = hrtem_tilt_series(
        np.zeros((6, 12, 12), np.float32),
        angles=[0.0, 10.0],
        defocus=[0.0, 50.0, 100.0],
        voxel_size=0.5,
    )
    files = write_hrtem_series(s, tmp_path)
    with mrcfile.open(tmp_path / "images.mrc") as f:
        assert f.data.shape == (6, 12, 12)
    assert np.loadtxt(tmp_path / "defocus.txt").tolist() == [[0.0, 50.0, 100.0]] * 2
    assert sorted(p.name for p in files) == sorted(
        ["images.mrc", "truth_potential.mrc", "angles.tlt", "defocus.txt", "hrtem.json"]
    )


def test_write_hrtem_series_replaces_every_file_by_rename(tmp_path):
    """Atomic writes: rewriting a series puts new files (new inodes) under every name, so a
    reader holding an old file never sees it half-overwritten; no temporary files remain."""
    s = hrtem_tilt_series(np.zeros((2, 8, 8), np.float32), angles=[0.0, 10.0], voxel_size=0.5)
    files = write_hrtem_series(s, tmp_path)
    before = {p.name: p.stat().st_ino for p in files}
    handles = {p.name: p.open("rb") for p in files}  # keep the old inodes alive
    try:
        write_hrtem_series(s, tmp_path)
        after = {p.name: p.stat().st_ino for p in files}
    finally:
        for h in handles.values():
            h.close()
    assert [name for name in before if before[name] == after[name]] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_bad_input():
    mic = Microscope()
    with pytest.raises(ValueError, match="voxel_size"):
        multislice_images(np.zeros((2, 8, 8)), 0.0, 0.0, mic)
    with pytest.raises(ValueError, match="n_bin"):
        MultisliceOptions(n_bin=0)
    with pytest.raises(ValueError, match="dose"):
        hrtem_tilt_series(np.zeros((2, 8, 8)), angles=[0.0], dose=-1.0)
