"""Operators of multislice phase-retrieval tomography (wedge.methods.phase): the per-tilt
forward model, its rotation (cached grids, padding) and adjoint, the per-tilt loss gradient
against plain torch autograd, and the proximal operators against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wedge
from wedge.geometry import euler_to_matrix
from wedge.methods.phase import BeamFrame, PhaseOptions, soft_threshold, tv_prox_fgp
from wedge.methods.phase.iteration import PhaseIteration
from wedge.methods.phase.prox import forward_difference, forward_difference_adjoint
from wedge.models import get_model
from wedge.multislice import MultisliceOptions, rotate_volume
from wedge.optics import Microscope
from wedge.parameters import AcquisitionParameters
from wedge.problem import Problem

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = 0.5
MIC = Microscope(cs=2e4)


def _series(
    rng, shape=(12, 16, 14), angles=(-50.0, 0.0, 33.0), axis=0.0, shifts=True, df=(80.0, 250.0)
):
    n = len(angles)
    df = np.tile(df, (n, 1))
    imgs = np.ones((n, 2, shape[1], shape[2]), np.float32)
    sh = rng.normal(0, 1, (n, 2)) if shifts else None
    return wedge.TiltSeries(
        imgs, np.asarray(angles), pixel_size=D, defocus=df, microscope=MIC,
        tilt_axis_angle=axis, shifts=sh,
    )  # fmt: skip


@pytest.mark.parametrize("axis", [0.0, 7.0])
def test_beam_frame_images_equal_the_registered_multislice_model(rng, axis):
    # tilt axis 0: the cached (z, x) grid path; 7°: the 3D grid path
    shape = (12, 16, 14)
    vol = torch.tensor(rng.random(shape) * 20, dtype=torch.float32)
    s = _series(rng, shape, axis=axis)
    p = AcquisitionParameters(s)
    opts = MultisliceOptions(n_bin=3)
    frame = BeamFrame(shape, D, MIC, opts, 0, torch.device("cpu"))
    mine = torch.stack([frame.images(vol, p, i, False) for i in range(3)])
    ref = get_model("multislice").images(
        vol, p, {"voxel_size": D, "microscope": MIC, "options": opts}
    )
    # measured 9.5e-7 (axis 0) and 7.2e-7 (axis 7°) with image contrast (std) 7e-3
    assert float((mine - ref).abs().max()) < 1e-5


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_y_axis_rotation_equals_rotate_volume_of_the_zero_padded_volume(rng, pad, sparse):
    # sparse: the cached interpolation matrix; else grid_sample with a (z, x) grid
    shape = (9, 8, 11)
    vol = torch.tensor(rng.random(shape), dtype=torch.float32)
    frame = BeamFrame(shape, D, MIC, MultisliceOptions(), pad, torch.device("cpu"))
    big = F.pad(vol, (pad,) * 6)
    for theta in (-70.0, 20.0, 90.0):
        e = torch.tensor([0.0, theta, 0.0], dtype=torch.float64)
        g = frame._grid(euler_to_matrix(torch.deg2rad(e)), sparse=sparse)
        assert g.kind == ("plane" if sparse else "2d")
        got = frame.rotate(vol, g)
        want = rotate_volume(big, e)
        # measured ≤ 1.2e-6 (float32 grids built in two ways) on values in [0, 1)
        assert float((got - want).abs().max()) < 1e-5


@pytest.mark.parametrize(
    "euler, sparse",
    [((0.0, 35.0, 0.0), False), ((0.0, 35.0, 0.0), True), ((12.0, -40.0, 5.0), False)],
)
def test_rotation_adjoint_passes_the_normalised_dot_product_test(rng, euler, sparse):
    shape = (8, 9, 10)
    frame = BeamFrame(shape, D, MIC, MultisliceOptions(), 2, torch.device("cpu"))
    r = euler_to_matrix(torch.deg2rad(torch.tensor(euler)))
    g = frame._grid(r.to(torch.float64), sparse=sparse)
    dt = torch.float32 if sparse else torch.float64  # the sparse weights are float32
    v = torch.tensor(rng.normal(size=shape), dtype=dt, requires_grad=True)
    w = torch.tensor(rng.normal(size=frame.frame_shape), dtype=dt)
    if not sparse:
        g.grid = g.grid.to(torch.float64)
    rv = frame.rotate(v, g)
    (rtw,) = torch.autograd.grad(rv, v, w)  # the adjoint Rᵀ applied by autograd (Alg. 3 l. 10)
    lhs, rhs = float((rv.detach() * w).sum()), float((v.detach() * rtw).sum())
    scale = float(rv.detach().norm() * w.norm())
    # measured: ≤ 3e-18 (float64 grid_sample), 0 (float32 sparse products, this seed)
    assert abs(lhs - rhs) / scale < (1e-6 if sparse else 1e-12)


def _reference_images(vol, s, i, pad, opts, focal=None):
    """Plain torch in float64/complex128: zero-pad, rotate_volume, bin, transmit, propagate,
    H at Δf + pad·d, |·|², Fourier shift of image j by shifts[i] + focal[i, j] (one image at
    a time), crop. Differentiable by autograd only."""
    from wedge.models import shift_images
    from wedge.multislice import _setup, bin_slices
    from wedge.optics import aberration_phase, spatial_frequencies

    big = F.pad(vol, (pad,) * 6)
    p = AcquisitionParameters(s, ("defocus", "c3", "shifts", "focal_shifts"), focal_shifts=focal)
    e = torch.stack([p.phi[i] + p.tilt_axis, p.tilt[i], p.psi[i]]).detach()
    w = bin_slices(rotate_volume(big, e), opts.n_bin) * D
    shape = tuple(big.shape[1:])
    prop, _ = _setup(shape, big.shape[0], D, 0.0, MIC, opts, vol.device)
    prop = prop.to(torch.complex128)
    psi = torch.ones(shape, dtype=torch.complex128)
    for m in range(w.shape[0]):
        psi = torch.fft.ifft2(
            torch.fft.fft2(torch.polar(torch.ones_like(w[m]), MIC.sigma * w[m]) * psi) * prop
        )
    qy, qx = spatial_frequencies(shape, D)
    import dataclasses

    chi = aberration_phase(qy, qx, p.defocus[i] + pad * D, dataclasses.replace(MIC, cs=0.0))
    q2 = qx**2 + qy**2
    chi = chi + torch.pi * MIC.wavelength * q2 * 0.5 * p.c3 * MIC.wavelength**2 * q2
    img = torch.fft.ifft2(torch.fft.fft2(psi)[None] * torch.exp(-1j * chi))
    inten = img.real**2 + img.imag**2
    img = torch.cat(
        [shift_images(inten[j][None], (p.shifts[i] + p.focal_shifts[i, j])[None]) for j in range(2)]
    )
    return img[:, pad:-pad, pad:-pad] if pad else img, p


@pytest.mark.parametrize("loss", ["amplitude", "intensity", "poisson"])
def test_per_tilt_loss_gradient_equals_torch_autograd(rng, loss):
    shape = (12, 14, 14)
    s = _series(rng, shape, angles=(-35.0,))
    vol = torch.tensor(rng.random(shape) * 15, dtype=torch.float32)
    meas = torch.tensor(rng.uniform(0.8, 1.2, (1, 2, 14, 14)), dtype=torch.float32)
    focal = rng.normal(0, 0.7, (1, 2, 2))
    opts = PhaseOptions(loss=loss, padding=2, n_bin=4, focal_shifts=focal)
    refine = ("defocus", "c3", "shifts", "focal_shifts")
    problem = Problem(s, shape, torch.device("cpu"), refine=refine)
    alg = PhaseIteration(problem, opts, None, "multislice", 4, meas)
    v1 = vol.clone().requires_grad_(True)
    alg._loss(alg.frame.images(v1, alg.params, 0, False), 0).backward()
    v2 = vol.double().requires_grad_(True)
    ref_img, p_ref = _reference_images(v2, s, 0, 2, MultisliceOptions(n_bin=4), focal)
    alg.meas = alg.meas.double()
    alg._loss(ref_img, 0).backward()
    # measured (max deviation / max entry, float32 model vs float64 reference, 3 losses):
    # volume ≤ 1.9e-6, shifts ≤ 3.8e-5, focal shifts ≤ 3.3e-5, defocus ≤ 1.9e-4, C3 ≤ 2.2e-4
    # (scalar sums of many float32 terms that largely cancel)
    tol = {"volume": 1e-4, "shifts": 1e-4, "focal_shifts": 1e-4, "defocus": 1e-3, "c3": 2e-3}
    pairs = {"volume": (v1.grad, v2.grad)}
    pairs.update(
        {n: (getattr(alg.params, n).grad, getattr(p_ref, n).grad) for n in tol if n != "volume"}
    )
    for name, (a, b) in pairs.items():
        assert float(b.abs().max()) > 0
        err = float((a.double() - b).abs().max()) / float(b.abs().max())
        assert err <= tol[name], f"{name}: {err:.2e}"


def test_focal_shift_gradient_equals_finite_differences(rng):
    # the float64 reference model: its autograd gradient in the focal shifts against
    # central differences of its loss (h = 1e-4 px)
    shape = (8, 10, 10)
    s = _series(rng, shape, angles=(20.0,))
    vol = torch.tensor(rng.random(shape) * 15, dtype=torch.float64)
    meas = torch.tensor(rng.uniform(0.8, 1.2, (2, 10, 10)))
    focal = rng.normal(0, 0.7, (1, 2, 2))

    def loss(f):
        img, p = _reference_images(vol, s, 0, 0, MultisliceOptions(n_bin=4), f)
        return ((torch.sqrt(img) - torch.sqrt(meas)) ** 2).sum(), p

    val, p = loss(focal)
    val.backward()
    grad = p.focal_shifts.grad.numpy()
    fd = np.zeros_like(focal)
    h = 1e-4
    for idx in np.ndindex(focal.shape):
        e = np.zeros_like(focal)
        e[idx] = h
        with torch.no_grad():
            fd[idx] = (float(loss(focal + e)[0]) - float(loss(focal - e)[0])) / (2 * h)
    # measured: relative deviation 7.5e-9 (largest |gradient| 3.7e-3)
    assert np.abs(grad).max() > 1e-3
    assert np.abs(grad - fd).max() / np.abs(fd).max() < 1e-6


def test_to_series_registers_the_images_by_the_focal_shifts(rng):
    from scipy.ndimage import gaussian_filter

    from wedge.models import shift_images

    s = _series(rng, (6, 12, 12))
    # periodic and smooth: the Fourier shift and its inverse lose only the Nyquist content
    smooth = gaussian_filter(rng.normal(size=s.images.shape), (0, 0, 2, 2), mode="wrap")
    s = s.replace(images=(1 + smooth).astype(np.float32))
    focal = rng.normal(0, 1.0, (3, 2, 2))
    moved = shift_images(
        torch.tensor(s.images).reshape(6, 12, 12), torch.tensor(focal).reshape(6, 2)
    )
    moved_series = s.replace(images=moved.reshape(s.images.shape).numpy())
    p = AcquisitionParameters(moved_series, focal_shifts=focal)
    out = p.to_series(moved_series)
    # measured 3.2e-6 (the Nyquist content the real-valued Fourier shift drops)
    np.testing.assert_allclose(out.images, s.images, atol=1e-5)
    assert out.provenance[-1].startswith("focal alignment")
    np.testing.assert_array_equal(out.shifts, s.shifts)
    assert AcquisitionParameters(s).to_series(s).images is s.images  # zero: shared, not copied
    with pytest.raises(ValueError, match="focal_shifts must be finite"):
        AcquisitionParameters(s, focal_shifts=np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match="without defocus"):
        AcquisitionParameters(s.replace(defocus=None), focal_shifts=focal)


def test_padding_keeps_the_images_of_a_compact_object(rng):
    # the exit plane of the padded frame lies pad·d below the volume's: H at Δf + pad·d
    # brings it back. A smooth blob (no band-limit or wrap-around differences between grids)
    n, pad = 24, 16
    c = (np.arange(n) - (n - 1) / 2) * D
    zz, yy, xx = np.meshgrid(c, c, c, indexing="ij")
    blob = 30 * np.exp(-((xx - 0.7) ** 2 + (yy + 0.4) ** 2 + (zz - 0.3) ** 2) / (2 * 0.8**2))
    vol = torch.tensor(blob, dtype=torch.float32)
    s = _series(rng, (n, n, n), angles=(0.0, 40.0), shifts=False, df=(30.0, 80.0))
    p = AcquisitionParameters(s)
    p_uncorrected = AcquisitionParameters(s.replace(defocus=s.defocus - pad * D))
    a = BeamFrame((n, n, n), D, MIC, MultisliceOptions(n_bin=2), 0, torch.device("cpu"))
    b = BeamFrame((n, n, n), D, MIC, MultisliceOptions(n_bin=2), pad, torch.device("cpu"))
    for i in range(2):
        ia, ib = a.images(vol, p, i, False), b.images(vol, p, i, False)
        contrast = float((ia - 1).abs().max())
        # measured 2.2e-3 and 2.3e-3 of the contrast
        assert float((ia - ib).abs().max()) < 0.01 * contrast
        # without the correction (H at Δf from the frame's exit): measured 0.118, 0.119
        ic = b.images(vol, p_uncorrected, i, False)
        assert float((ia - ic).abs().max()) > 0.05 * contrast


# ---------------------------------------------------------------------------- prox operators
def test_forward_difference_adjoint_passes_the_dot_product_test(rng):
    x = torch.tensor(rng.normal(size=(7, 8, 9)), dtype=torch.float64)
    p = torch.tensor(rng.normal(size=(3, 7, 8, 9)), dtype=torch.float64)
    lhs = float((forward_difference(x) * p).sum())
    rhs = float((x * forward_difference_adjoint(p)).sum())
    assert abs(lhs - rhs) / float(forward_difference(x).norm() * p.norm()) < 1e-13


def _rof(u, lam, f):
    g = forward_difference(u)
    return float(0.5 * ((u - f) ** 2).sum() + lam * torch.sqrt((g * g).sum(0)).sum())


def test_fgp_tv_prox_reaches_the_minimum_found_by_scikit_image(rng):
    skr = pytest.importorskip("skimage.restoration")
    f = torch.tensor(rng.normal(0, 1, (10, 12, 14)), dtype=torch.float64)
    lam = 0.3
    sk = torch.tensor(skr.denoise_tv_chambolle(f.numpy(), weight=lam, eps=1e-10, max_num_iter=5000))
    ref = _rof(sk, lam, f)
    # measured: 20 FGP iterations 1.8e-4 above skimage's objective (relative), 1000: 6.9e-10
    assert _rof(tv_prox_fgp(f, lam, 20), lam, f) < ref * (1 + 5e-4)
    u = tv_prox_fgp(f, lam, 1000)
    assert _rof(u, lam, f) < ref * (1 + 1e-7)
    assert float((u - sk).abs().max()) < 1e-3  # measured 5.5e-5


def test_fgp_tv_prox_of_a_step_moves_each_plateau_by_weight_over_its_size():
    # ROF of a step with plateaus of n planes: each plateau moves by λ/n toward the other
    z = torch.zeros(20, 6, 5, dtype=torch.float64)
    z[10:] = 1.0
    u = tv_prox_fgp(z, 0.5, 500)
    np.testing.assert_allclose(u[:10].numpy(), 0.05, atol=1e-3)
    np.testing.assert_allclose(u[10:].numpy(), 0.95, atol=1e-3)


def test_fgp_tv_prox_with_positivity_is_feasible_and_beats_clipping(rng):
    f = torch.tensor(rng.normal(0, 1, (10, 12, 14)), dtype=torch.float64)
    lam = 0.3
    u = tv_prox_fgp(f, lam, 500, nonnegative=True)
    assert float(u.min()) >= 0
    clipped = tv_prox_fgp(f, lam, 500).clamp(min=0)  # feasible, not the constrained optimum
    assert _rof(u, lam, f) < _rof(clipped, lam, f)  # measured 764.39 < 767.83


def test_soft_threshold_is_the_analytic_l1_prox():
    x = torch.tensor([-3.0, -0.5, 0.0, 0.2, 1.0, 4.0])
    np.testing.assert_allclose(soft_threshold(x, 0.5).numpy(), [-2.5, 0, 0, 0, 0.5, 3.5])
    np.testing.assert_allclose(soft_threshold(x, 0.5, True).numpy(), [0, 0, 0, 0, 0.5, 3.5])
