"""Tests for wedge.metrics against independent references.

References: scikit-image (SSIM, PSNR), numpy.corrcoef (Pearson), hand-computed values
(relative L2, R-factor, RMS re-projection error, half-bit curve, crossing interpolation),
a plain full-complex numpy.fft FSC (shell counts and correlations), and statistics of
independent Gaussian noise with known spectra (FSC spread, band-limited crossing).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from wedge import metrics
from wedge.metrics import (
    FSCResult,
    MetricSet,
    compute_metrics,
    fsc,
    half_bit_threshold,
    pearson,
    psnr,
    r_factor,
    relative_l2,
    rms_reprojection_error,
    ssim,
)


def _pair(rng: np.random.Generator, shape: tuple[int, ...], noise: float = 0.3):
    x = rng.random(shape)
    return x, x + noise * rng.standard_normal(shape)


# --------------------------------------------------------------------------- SSIM


@pytest.mark.parametrize("shape", [(19, 23, 26), (40, 33)])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"win_size": 5},
        {"gaussian_weights": True},
        {"gaussian_weights": True, "use_sample_covariance": False},
        {"K1": 0.02, "K2": 0.05},
    ],
    ids=["uniform7", "uniform5", "gauss", "gauss-population", "constants"],
)
def test_ssim_matches_skimage(rng, shape, options):
    ref, x = _pair(rng, shape)
    data_range = 1.7
    expected = structural_similarity(x, ref, data_range=data_range, **options)
    ours_options = {k.lower(): v for k, v in options.items()}
    got = ssim(x, ref, data_range=data_range, **ours_options)
    assert got == pytest.approx(expected, abs=1e-4)


def test_ssim_default_range_is_reference_range(rng):
    ref, x = _pair(rng, (12, 14, 16))
    expected = structural_similarity(x, ref, data_range=float(ref.max() - ref.min()))
    assert ssim(x, ref) == pytest.approx(expected, abs=1e-4)


def test_ssim_slabs_match_whole(rng, monkeypatch):
    """Forcing many small slabs along Z must not change the result."""
    ref, x = _pair(rng, (20, 15, 17))
    expected = structural_similarity(x, ref, data_range=1.0, gaussian_weights=True)
    monkeypatch.setattr(metrics.similarity, "_SSIM_CHUNK_VOXELS", 15 * 17 * 13)
    assert ssim(x, ref, data_range=1.0, gaussian_weights=True) == pytest.approx(expected, abs=1e-4)


def test_ssim_of_identical_is_one_and_offset_lowers_it(rng):
    ref = rng.random((9, 10, 11)) + 100.0  # large offset: checks cancellation handling
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    shifted = ref + 0.2
    expected = structural_similarity(shifted, ref, data_range=1.0)
    assert ssim(shifted, ref, data_range=1.0) == pytest.approx(expected, abs=1e-4)
    assert expected < 1.0


def test_ssim_rejects_bad_windows(rng):
    ref, x = _pair(rng, (8, 8, 8))
    with pytest.raises(ValueError, match="odd"):
        ssim(x, ref, win_size=6)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x, ref, gaussian_weights=True)
    with pytest.raises(ValueError, match="win_size"):
        ssim(x, ref, gaussian_weights=True, win_size=7)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        ssim(x[0, 0], ref[0, 0])


# --------------------------------------------------------------------------- PSNR, PCC, L2


def test_psnr_matches_skimage(rng):
    ref, x = _pair(rng, (10, 11, 12))
    for data_range in (1.0, 3.5):
        expected = peak_signal_noise_ratio(ref, x, data_range=data_range)
        assert psnr(x, ref, data_range=data_range) == pytest.approx(expected, rel=1e-12)
    default = peak_signal_noise_ratio(ref, x, data_range=float(ref.max() - ref.min()))
    assert psnr(x, ref) == pytest.approx(default, rel=1e-12)
    assert psnr(ref, ref) == math.inf


def test_psnr_analytic():
    ref = np.zeros((4, 4))
    ref[0, 0] = 2.0  # range 2
    x = ref + 0.1  # MSE 0.01
    assert psnr(x, ref) == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-12)


def test_pearson_matches_numpy(rng):
    x, y = _pair(rng, (7, 8, 9), noise=0.5)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x.ravel(), y.ravel())[0, 1], abs=1e-12)
    assert pearson(x, -3 * x + 2) == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        pearson(x, np.ones_like(x))


def test_relative_l2_analytic(rng):
    ref = rng.standard_normal((5, 6, 7))
    assert relative_l2(1.25 * ref, ref) == pytest.approx(0.25, rel=1e-12)
    assert relative_l2(np.zeros_like(ref), ref) == pytest.approx(1.0, rel=1e-12)
    # Orthogonal error: ||(1, 1) - (1, 0)|| / ||(1, 0)|| = 1; ||(3, 4) - 0|| / ||(3, 4)|| = 1
    assert relative_l2(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == pytest.approx(1.0)
    assert relative_l2(np.array([3.0, 0.0]), np.array([3.0, 4.0])) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="all zero"):
        relative_l2(ref, np.zeros_like(ref))


# --------------------------------------------------------------------------- data space


def test_r_factor_analytic():
    b = np.array([[[1.0, -1.0], [2.0, 0.0]], [[4.0, 4.0], [0.0, 0.0]]])  # sum|b| = 4, 8
    calc = b.copy()
    calc[0, 0, 0] += 1.0  # image 0: |diff| sum 1 -> 1/4
    calc[1, 1, 1] -= 4.0  # image 1: |diff| sum 4 -> 4/8
    assert r_factor(b, calc) == pytest.approx((0.25 + 0.5) / 2, rel=1e-12)  # Eq. 10
    assert r_factor(b, calc, per_image=False) == pytest.approx(5 / 12, rel=1e-12)
    assert r_factor(b[1], calc[1]) == pytest.approx(0.5, rel=1e-12)
    assert r_factor(b, b) == 0.0
    zero = b.copy()
    zero[1] = 0.0
    with pytest.raises(ValueError, match=r"\[1\] are all zero"):
        r_factor(zero, calc)


def test_rms_reprojection_error_analytic():
    v = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert rms_reprojection_error(v, v - 0.5) == pytest.approx(0.5, rel=1e-12)
    w = v.copy()
    w[1, 2, 3] += 4.8  # one pixel of 24: sqrt(4.8**2 / 24)
    assert rms_reprojection_error(v, w) == pytest.approx(math.sqrt(4.8**2 / 24), rel=1e-12)


def test_shape_and_value_checks(rng):
    a = rng.random((4, 5, 6))
    with pytest.raises(ValueError, match="same shape"):
        r_factor(a, a[:, :, :5])
    with pytest.raises(ValueError, match="complex"):
        pearson(a + 1j, a)
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        rms_reprojection_error(bad, a)
    with pytest.raises(ValueError, match="constant"):
        psnr(a, np.ones_like(a))
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, a, data_range=-1.0)


# --------------------------------------------------------------------------- FSC


def _reference_fsc(a: np.ndarray, b: np.ndarray, n_shells: int):
    """Plain full-complex FFT FSC with shells round(rho / delta), k = 1 ... n_shells."""
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in a.shape], indexing="ij")
    rho = np.sqrt(sum(g**2 for g in grids))
    k = np.floor(rho / (0.5 / n_shells) + 0.5).astype(int)
    corr, counts = [], []
    for shell in range(1, n_shells + 1):
        sel = k == shell
        num = np.sum((fa[sel] * np.conj(fb[sel])).real)
        den = np.sqrt(np.sum(np.abs(fa[sel]) ** 2) * np.sum(np.abs(fb[sel]) ** 2))
        corr.append(num / den)
        counts.append(int(sel.sum()))
    return np.array(corr), np.array(counts)


@pytest.mark.parametrize("shape", [(16, 16, 16), (12, 17, 20), (15, 15, 15), (30, 25)])
def test_fsc_matches_full_fft_reference(rng, shape):
    a, b = _pair(rng, shape, noise=1.0)
    res = fsc(a, b, voxel_size=2.0)
    n_shells = min(shape) // 2
    corr, counts = _reference_fsc(a, b, n_shells)
    np.testing.assert_array_equal(res.n_voxels, counts)
    np.testing.assert_allclose(res.correlation, corr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.frequencies, np.arange(1, n_shells + 1) / (2 * n_shells * 2.0))
    assert res.frequencies[-1] == pytest.approx(1 / (2 * 2.0))  # Nyquist, 1/Å


def test_fsc_self_is_one(rng):
    for shape in [(20, 20, 20), (14, 18, 22), (32, 28)]:
        a = rng.standard_normal(shape)
        res = fsc(a, a)
        np.testing.assert_allclose(res.correlation, 1.0, atol=1e-12)
        assert res.resolution() == pytest.approx(2.0)  # never crosses: Nyquist limit
        assert res.resolution_half_bit() == pytest.approx(2.0)


def test_fsc_of_independent_noise_is_zero_within_spread(rng):
    shape = (40, 40, 40)
    res = fsc(rng.standard_normal(shape), rng.standard_normal(shape))
    n = res.n_voxels
    # Each shell averages n real products (n/2 independent complex pairs): sd = 1/sqrt(n).
    assert np.all(np.abs(res.correlation) < 4 / np.sqrt(n))
    mean = np.sum(res.correlation * n) / np.sum(n)
    assert abs(mean) < 4 / np.sqrt(np.sum(n))
    z = res.correlation * np.sqrt(n)  # ~ N(0, 1) per shell
    assert 0.6 < np.sqrt(np.mean(z**2)) < 1.4


def test_frc_of_independent_noise_spread(rng):
    res = fsc(rng.standard_normal((256, 256)), rng.standard_normal((256, 256)))
    z = res.correlation * np.sqrt(res.n_voxels)
    assert np.all(np.abs(z) < 4.5)
    assert 0.8 < np.sqrt(np.mean(z**2)) < 1.2  # 128 shells: rms(z) = 1 +- 0.06


def test_fsc_band_limited_crossing(rng):
    """a = s + n1, b = s + n2 with s white below radius fc: FSC = S/(S+N) below fc, 0 above."""
    shape = (48, 48, 48)
    fc = 0.25  # cycles per voxel
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    band = np.sqrt(sum(g**2 for g in grids)) < fc
    signal = np.fft.ifftn(np.fft.fftn(rng.standard_normal(shape)) * band).real
    noise_sd = 0.5  # per-voxel power ratio S/(S+N) = 1 / (1 + 0.25) = 0.8 inside the band
    a = signal + noise_sd * rng.standard_normal(shape)
    b = signal + noise_sd * rng.standard_normal(shape)
    res = fsc(a, b, voxel_size=1.5)
    f_vox = res.frequencies * 1.5  # cycles per voxel
    width = 0.5 / 24
    inside = f_vox + width / 2 < fc
    outside = f_vox - width / 2 > fc
    n = res.n_voxels
    assert np.all(np.abs(res.correlation[inside] - 0.8) < 4 / np.sqrt(n[inside]))
    assert np.all(np.abs(res.correlation[outside]) < 4 / np.sqrt(n[outside]))
    for resolution in (res.resolution(0.143), res.resolution(0.5), res.resolution_half_bit()):
        assert abs(1.5 / resolution - fc) <= width  # crossing within one shell of fc
    assert res.resolution(0.9) == math.inf  # 0.8 < 0.9 from the first shell on


def test_fsc_resolution_worsens_with_noise(rng):
    v = ndimage.gaussian_filter(rng.standard_normal((40, 40, 40)), 1.5, mode="wrap")
    n = rng.standard_normal(v.shape)
    levels = [0.1, 0.3, 1.0, 3.0, 10.0]
    res = [fsc(v, v + s * v.std() * n, voxel_size=2.0) for s in levels]
    fixed = [r.resolution() for r in res]
    half = [r.resolution_half_bit() for r in res]
    assert all(np.isfinite(fixed)) and all(np.isfinite(half))
    assert np.all(np.diff(fixed) > 0) and np.all(np.diff(half) > 0)
    assert fixed[0] >= 4.0  # never better than Nyquist (2 voxels of 2 Å)


def test_half_bit_formula():
    # van Heel & Schatz (2005): T = (SNR + (2 sqrt(SNR) + 1)/sqrt(n)) /
    # (SNR + 1 + 2 sqrt(SNR)/sqrt(n)) with the half-bit SNR (sqrt(2) - 1) / 2.
    snr = (math.sqrt(2) - 1) / 2
    n = np.array([1, 4, 18, 100, 1e4, 1e8])
    general = (snr + (2 * math.sqrt(snr) + 1) / np.sqrt(n)) / (
        snr + 1 + 2 * math.sqrt(snr) / np.sqrt(n)
    )
    np.testing.assert_allclose(half_bit_threshold(n), general, atol=1e-4)
    assert half_bit_threshold([1])[0] == pytest.approx(1.0, abs=1e-12)
    assert half_bit_threshold(np.array([1e20]))[0] == pytest.approx(0.2071 / 1.2071, abs=1e-6)
    with pytest.raises(ValueError, match="positive"):
        half_bit_threshold([0, 5])


def test_resolution_interpolation_and_limits():
    freqs = np.array([0.1, 0.2, 0.3, 0.4])
    counts = np.array([10, 40, 90, 160])
    res = FSCResult(freqs, np.array([0.9, 0.5, 0.1, 0.05]), counts, voxel_size=1.0)
    f = 0.2 + (0.5 - 0.143) / (0.5 - 0.1) * 0.1
    assert res.resolution() == pytest.approx(1 / f, rel=1e-12)
    assert res.resolution(0.95) == math.inf
    assert res.resolution(0.01) == pytest.approx(1 / 0.4)
    t = half_bit_threshold(counts)
    d = np.array([0.9, 0.5, 0.1, 0.05]) - t
    i = int(np.flatnonzero(d < 0)[0])
    f_half = freqs[i - 1] + d[i - 1] / (d[i - 1] - d[i]) * (freqs[i] - freqs[i - 1])
    assert res.resolution_half_bit() == pytest.approx(1 / f_half, rel=1e-12)
    np.testing.assert_allclose(res.half_bit, t)
    gap = FSCResult(freqs, np.array([0.9, np.nan, 0.9, 0.9]), counts, voxel_size=1.0)
    assert gap.resolution() == pytest.approx(1 / (0.1 + (0.9 - 0.143) / 0.9 * 0.1))


def test_fsc_input_checks(rng):
    a = rng.random((8, 8, 8))
    with pytest.raises(ValueError, match="voxel_size"):
        fsc(a, a, voxel_size=0.0)
    with pytest.raises(ValueError, match="n_shells"):
        fsc(a, a, n_shells=2.5)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        fsc(a[0, 0], a[0, 0])
    res = fsc(a, a, n_shells=40)  # finer than the grid: empty shells are dropped
    assert np.all(res.n_voxels > 0) and len(res.frequencies) < 40


# --------------------------------------------------------------------------- bundle, torch


def test_compute_metrics(rng):
    ref, x = _pair(rng, (9, 10, 11))
    got = compute_metrics(x, ref)
    assert list(got) == ["pearson", "relative_l2", "psnr", "ssim"]
    data_range = float(ref.max() - ref.min())
    assert got["pearson"] == pytest.approx(np.corrcoef(x.ravel(), ref.ravel())[0, 1])
    assert got["relative_l2"] == pytest.approx(np.linalg.norm(x - ref) / np.linalg.norm(ref))
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(ref, x, data_range=data_range))
    assert got["ssim"] == pytest.approx(
        structural_similarity(x, ref, data_range=data_range), abs=1e-4
    )
    assert MetricSet.compute(x, ref, data_range=2.0).psnr == pytest.approx(
        peak_signal_noise_ratio(ref, x, data_range=2.0)
    )


def test_torch_inputs_give_numpy_numbers(rng, device):
    ref, x = _pair(rng, (12, 13, 14))
    ref32, x32 = ref.astype(np.float32), x.astype(np.float32)
    t_ref = torch.as_tensor(ref32, device=device)
    t_x = torch.as_tensor(x32, device=device)
    for fn in (relative_l2, pearson, psnr, ssim, r_factor, rms_reprojection_error):
        assert fn(t_x, t_ref) == pytest.approx(fn(x32, ref32), rel=1e-9, abs=1e-12)
    assert fn(t_x, ref32) == pytest.approx(fn(x32, ref32), rel=1e-9)  # mixed inputs
    assert compute_metrics(t_x, t_ref) == pytest.approx(compute_metrics(x32, ref32), rel=1e-9)
    a, b = fsc(t_x, t_ref, voxel_size=3.0), fsc(x32, ref32, voxel_size=3.0)
    assert isinstance(a.correlation, np.ndarray)
    np.testing.assert_allclose(a.correlation, b.correlation, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(a.n_voxels, b.n_voxels)
    np.testing.assert_array_equal(a.frequencies, b.frequencies)
    assert a.resolution() == pytest.approx(b.resolution(), rel=1e-5)
