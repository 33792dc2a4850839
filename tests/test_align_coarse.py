"""Coarse alignment (wedge.align.coarse, wedge.align.axis) against independent data.

Synthetic data: a 3D phantom of Gaussian blobs projected by ASTRA (its angle is wedge's −β
on a (Z, X) slice), then rotated in-plane and shifted by one cubic-spline
``scipy.ndimage.affine_transform`` following docs/conventions.md: the measured image at
q is the ideal projection at Z(−α)(q − d). An analytic Gaussian blob for the centre of
mass. Real data: the needle HAADF-STEM series with ETSpy's shifts.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi

import wedge
from conftest import astra_project, axis_frame, misaligned_images, shared_data
from wedge.align import (
    AlignmentResult,
    coarse_align,
    com_shifts,
    common_line_score,
    estimate_tilt_axis,
    xcorr_shifts,
)

ANGLES = np.linspace(-60.0, 60.0, 41)  # 3° steps; index 20 is 0°


# ----------------------------------------------------------------------------- data
def _blob_volume(shape=(32, 80, 80), n=40, seed=0) -> np.ndarray:
    """(Z, Y, X) sum of random Gaussian ellipsoids (σ 1.2–3 voxels) centred within ±6
    voxels in Z and ±12 in Y and X, so that every projection stays clear of the images'
    tapered edges (8 pixels) after shifts of up to 10 pixels."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(s) - (s - 1) / 2 for s in shape], indexing="ij")
    v = np.zeros(shape)
    for _ in range(n):
        c = rng.uniform(-1, 1, 3) * np.array([6.0, 12.0, 12.0])
        s = rng.uniform(1.2, 3.0, 3)
        w = rng.uniform(0.5, 1.0)
        v += w * np.exp(
            -((z - c[0]) ** 2) / (2 * s[0] ** 2)
            - (y - c[1]) ** 2 / (2 * s[1] ** 2)
            - (x - c[2]) ** 2 / (2 * s[2] ** 2)
        )
    return v.astype(np.float32)


def _translation_fit(err_x: np.ndarray, angles: np.ndarray):
    """Least-squares a·cos β + b·sin β of an X error (an object translation by (a, b) in
    (x, z), which projections cannot tell from the object); returns (a, b), residual."""
    b = np.deg2rad(angles)
    design = np.stack([np.cos(b), np.sin(b)], 1)
    coef = np.linalg.lstsq(design, err_x, rcond=None)[0]
    return coef, err_x - design @ coef


def _stage(res: AlignmentResult, name: str) -> dict:
    (entry,) = [h for h in res.history if h["stage"] == name]
    return entry


def _rms(a) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def _pearson(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def phantom():
    vol = _blob_volume()
    proj = astra_project(vol, ANGLES)
    shifts = np.random.default_rng(1).normal(0.0, 3.0, (ANGLES.size, 2))
    shifts[20] = 0.0  # the 0° image is the frame of reference (see xcorr_shifts)
    return vol, proj, shifts


# ----------------------------------------------------------------------------- xcorr
@pytest.mark.parametrize("alpha", [0.0, 90.0])
def test_xcorr_recovers_scipy_shifts_of_astra_projections(phantom, alpha, device):
    """Shifts applied with scipy to ASTRA projections come back to a small fraction of a
    pixel, once the X error's object-translation part (a·cos β + b·sin β) is removed:
    measured RMS 0.040 / 0.028 px along the axis, 0.057 / 0.072 px across it (α = 0° /
    90°; the shifts fall on other image axes), after removing b = 1.2 px (the depth of
    the blobs' mean plane) and a = −0.1 px."""
    _, proj, true = phantom
    series = wedge.TiltSeries(misaligned_images(proj, alpha, true), ANGLES, tilt_axis_angle=alpha)
    est = xcorr_shifts(series, device=device)
    err = axis_frame(est - true, alpha)
    (a, b), resid_x = _translation_fit(err[:, 0], ANGLES)
    assert _rms(err[:, 1]) < 0.08  # measured 0.040 (α 0°), 0.028 (90°)
    assert _rms(resid_x) < 0.12  # measured 0.057, 0.072
    assert abs(a) < 0.3 and abs(b) < 2.0  # measured a = −0.10, −0.11; b = 1.16, 1.19


def test_cosine_stretching_reduces_xcorr_error(phantom, device):
    """The phantom is slab-like (32 thick, 64 wide): without stretching the X residual is
    twelve times larger (measured 0.67 px against 0.057 px)."""
    _, proj, true = phantom
    series = wedge.TiltSeries(misaligned_images(proj, 0.0, true), ANGLES)
    res = {}
    for stretch in (True, False):
        est = xcorr_shifts(series, stretch=stretch, device=device)
        res[stretch] = _rms(_translation_fit(est[:, 0] - true[:, 0], ANGLES)[1])
    assert res[False] > 4 * res[True]


# ----------------------------------------------------------------------------- axis
@pytest.mark.parametrize("alpha", [2.0, 90.0, -37.0])
def test_tilt_axis_angle_found_from_the_data(phantom, alpha, device):
    """Common-line search on shifted ASTRA projections rotated by scipy; the series says
    0° or (for −37°) is started from −30°. Measured errors: −0.0023° (2°), −0.0042° (90°),
    −0.0025° (−37°)."""
    _, proj, true = phantom
    images = misaligned_images(proj, alpha, true)
    near = -30.0 if alpha < 0 else (90.0 if alpha == 90 else 0.0)
    est = estimate_tilt_axis(wedge.TiltSeries(images, ANGLES), near=near, device=device)
    assert abs(est - alpha) < 0.02


def test_tilt_axis_is_known_modulo_half_a_turn(phantom, device):
    """α and α + 180° score alike (the data cannot tell them apart) while α + 90° is far
    worse; the estimate is folded into ±90° of ``near``."""
    _, proj, true = phantom
    series = wedge.TiltSeries(misaligned_images(proj, 2.0, true), ANGLES)
    s = common_line_score(series, [2.0, 182.0, 92.0, 12.0], device=device)
    assert abs(s[0] - s[1]) <= 1e-9 * s[2]
    assert s[0] < 1e-3 * s[3] and s[3] < s[2]  # measured 4.3e-7, 0.015 (12°), 0.10 (92°)
    est = estimate_tilt_axis(series, near=180.0, step=2.0, device=device)
    assert 90.0 <= est < 270.0 and abs(est - 182.0) < 0.02  # measured 181.9977


# ----------------------------------------------------------------------------- driver
def test_coarse_align_reconstructs_like_the_true_geometry(phantom, device):
    """Unknown α = 2° and shifts: SIRT with the estimates matches the truth as well as
    SIRT with the true geometry (the truth moved by the object translation the shifts
    leave free). Measured Pearson 0.8852 against 0.8858; 0.8814 with the true shifts but
    α = 0; 0.798 without alignment."""
    vol, proj, true = phantom
    series = wedge.TiltSeries(misaligned_images(proj, 2.0, true), ANGLES)
    images_before = series.images.copy()
    res = coarse_align(series, quality=True, quality_iterations=10, device=device)
    np.testing.assert_array_equal(series.images, images_before)  # input untouched
    assert series.shifts is None and series.tilt_axis_angle == 0.0
    assert isinstance(res, AlignmentResult)
    assert abs(res.tilt_axis_angle - 2.0) < 0.02  # measured 0.0023° off
    assert res.series.tilt_axis_angle == res.tilt_axis_angle
    np.testing.assert_array_equal(res.series.shifts, res.shifts)
    assert res.series.provenance[-1].startswith("coarse alignment (axis, xcorr)")
    assert [h["stage"] for h in res.history] == ["input", "axis", "xcorr", "centre"]
    # R-factor of a 10-iteration SIRT: measured 0.594 before, 0.588 after the axis, 0.273
    # after the shifts
    assert res.history[-1]["r_factor"] < 0.6 * res.history[0]["r_factor"]

    (a, b), _ = _translation_fit(axis_frame(res.shifts - true, 2.0)[:, 0], ANGLES)
    moved = ndi.shift(vol, (-b, 0.0, -a), order=3)  # (Z, Y, X)

    def pearson(shifts, alpha, ref):
        s = series.replace(shifts=shifts, tilt_axis_angle=alpha)
        rec = wedge.reconstruct(
            s, "sirt", iterations=50, thickness=32, progress=False, device=device
        )
        return _pearson(rec.volume, ref)

    p_true = pearson(true, 2.0, vol)
    p_est = pearson(res.shifts, res.tilt_axis_angle, moved)
    p_none = pearson(None, 0.0, vol)
    assert p_est > p_true - 0.003  # measured 0.8852 vs 0.8858
    assert p_none < p_true - 0.05  # measured 0.798: the test can tell


# ----------------------------------------------------------------------------- com
def _blob_series(alpha: float, shifts: np.ndarray, n_img: int = 64) -> wedge.TiltSeries:
    """Analytic projections of a Gaussian blob (σ 2.5 px) centred at (x, y, z) = (5, −3,
    4): at tilt β a 2D Gaussian at Z(α)(5 cos β + 4 sin β, −3) + d."""
    b = np.deg2rad(ANGLES)
    u, v = 5.0 * np.cos(b) + 4.0 * np.sin(b), np.full(b.shape, -3.0)
    c, s = np.cos(np.deg2rad(alpha)), np.sin(np.deg2rad(alpha))
    px = c * u - s * v + shifts[:, 0]
    py = s * u + c * v + shifts[:, 1]
    y, x = np.mgrid[:n_img, :n_img] - (n_img - 1) / 2
    images = np.exp(
        -((x[None] - px[:, None, None]) ** 2 + (y[None] - py[:, None, None]) ** 2) / 12.5
    )
    return wedge.TiltSeries(images, ANGLES, tilt_axis_angle=alpha)


@pytest.mark.parametrize("alpha", [0.0, 30.0])
def test_centre_of_mass_alignment_is_exact_on_an_analytic_blob(alpha, device):
    """Shifts with no object-translation part (X orthogonal to cos β and sin β, Y of zero
    mean, in the axis frame) come back exactly (measured 2e-8 px), and the fit finds the
    blob's centre (x0, z0) = (5, 4)."""
    rng = np.random.default_rng(3)
    b = np.deg2rad(ANGLES)
    design = np.stack([np.cos(b), np.sin(b)], 1)
    sx = rng.normal(0, 3, ANGLES.size)
    sx -= design @ np.linalg.lstsq(design, sx, rcond=None)[0]
    sy = rng.normal(0, 3, ANGLES.size)
    sy -= sy.mean()
    true = axis_frame(np.stack([sx, sy], 1), -alpha)  # axis frame → image frame
    series = _blob_series(alpha, true)
    np.testing.assert_allclose(com_shifts(series), true, atol=1e-6)
    res = coarse_align(series, axis=False, xcorr=False, com=True, device=device)
    np.testing.assert_allclose(res.shifts, true, atol=1e-6)
    com = _stage(res, "com")
    assert com["x0"] == pytest.approx(5.0, abs=1e-6)
    assert com["z0"] == pytest.approx(4.0, abs=1e-6)


def test_centre_of_mass_supplies_the_axis_offset_that_unstretched_xcorr_misses(device):
    """A 2.7 px axis offset (a shift common to all images, across the axis) on top of
    random shifts (zero at the 0° reference). Unstretched cross-correlation holds the blob
    still, so its X shifts miss a constant: the offset plus the blob's x0 = 5 px (error
    5 cos β + 4 sin β − 7.7; measured residual RMS 1.46 px after removing an object
    translation); the centre-of-mass stage adds it back (measured 7.6947 px, residual
    0.0018 px)."""
    rng = np.random.default_rng(4)
    true = rng.normal(0, 3, (ANGLES.size, 2))
    true[20] = 0.0
    true[:, 0] += 2.7
    series = _blob_series(0.0, true)
    out = {}
    for com in (False, True):
        res = coarse_align(series, axis=False, stretch=False, com=com, device=device)
        out[com] = _rms(_translation_fit(res.shifts[:, 0] - true[:, 0], ANGLES)[1])
    assert _stage(res, "com")["axis_offset"] == pytest.approx(2.7 + 5.0, abs=0.02)
    assert out[False] > 1.0
    assert out[True] < 0.01


# ----------------------------------------------------------------------------- real data
def test_needle_shifts_agree_with_etspy_and_axis_is_along_x(device):
    """Experimental HAADF-STEM needle (tilt axis along image X; the log says 90°). After
    subtracting each frame's border median, the unstretched cross-correlation shifts
    agree with ETSpy's (ETSpy applied −d) to 0.040 px (X) and 0.102 px (Y) RMS after
    removing the mean of the difference; the axis is found at −87.6° ≡ 92.4°, 2.4° from
    the nominal ±90° (a SIRT re-projection R-factor is lowest there too, see
    docs/alignment.md)."""
    folder = shared_data("needle-haadf-stem")
    series = wedge.read_tiltseries(folder / "HAADF.mrc")
    etspy = np.loadtxt(folder / "DERIVED_etspy_alignment.txt")
    np.testing.assert_allclose(etspy[:, 0], series.angles)
    img = series.images
    border = np.concatenate([img[:, 0], img[:, -1], img[:, 1:-1, 0], img[:, 1:-1, -1]], 1)
    series = series.replace(images=img - np.median(border, axis=1)[:, None, None])
    # centre=False: the xcorr gauge (the 0° image holds the object where it is), which is
    # what the mean-removed comparison with ETSpy below assumes
    res = coarse_align(series, stretch=False, centre=False, device=device)
    off_x = abs((res.tilt_axis_angle - 90.0 + 90.0) % 180.0 - 90.0)
    assert off_x < 3.0  # measured 2.40°
    ref = -etspy[:, [2, 1]]  # ETSpy's (axis 2, axis 1) shifts applied → wedge's (dx, dy)
    diff = res.shifts - ref
    diff -= diff.mean(axis=0)
    assert _rms(diff[:, 0]) < 0.08  # measured 0.040 (largest 0.089)
    assert _rms(diff[:, 1]) < 0.2  # measured 0.102 (largest 0.225)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_with_one_clear_sentence():
    img = np.zeros((3, 16, 16), np.float32)
    img[:, 6:10, 6:10] = 1.0
    ok = wedge.TiltSeries(img, [-10.0, 0.0, 10.0])
    with pytest.raises(ValueError, match="at least 2 tilts"):
        coarse_align(ok[1])
    with pytest.raises(ValueError, match="image 1 .* is constant"):
        xcorr_shifts(ok.replace(images=np.where(np.arange(3)[:, None, None] == 1, 0, img)))
    with pytest.raises(ValueError, match="image 0 .* is constant"):
        estimate_tilt_axis(ok.replace(images=np.zeros_like(img)))
    with pytest.raises(TypeError, match="wedge.TiltSeries"):
        coarse_align(img)
    with pytest.raises(ValueError, match="nothing to do"):
        coarse_align(ok, axis=False, xcorr=False, com=False)
    with pytest.raises(ValueError, match="stretch=False"):
        xcorr_shifts(ok.replace(angles=[-85.0, 0.0, 85.0]))
    with pytest.raises(ValueError, match="zero background"):
        com_shifts(ok.replace(images=img + 5.0))
    with pytest.raises(ValueError, match="sums to"):
        com_shifts(ok.replace(images=-img))
    with pytest.raises(ValueError, match="focal series"):
        coarse_align(wedge.TiltSeries(np.stack([img, img], 1), [-10.0, 0.0, 10.0]))
    with pytest.raises(ValueError, match="band"):
        estimate_tilt_axis(ok, band=(0.3, 0.2))


@pytest.mark.parametrize("alpha", [0.0, 92.4])
def test_centre_shifts_removes_a_translation_and_keeps_the_axis_offset(alpha):
    """Axis-frame shifts c + a cos β + b sin β + r across the axis and d + q along it
    (r, q random, r without c, a, b components): centring removes the depth translation
    b sin β and the mean along the axis, and keeps c + a cos β + r."""
    from wedge.align import centre_shifts

    rng = np.random.default_rng(7)
    beta = np.deg2rad(ANGLES)
    r, q = rng.normal(0, 0.3, (2, ANGLES.size))
    design = np.stack([np.ones_like(beta), np.cos(beta), np.sin(beta)], 1)
    r -= design @ np.linalg.lstsq(design, r, rcond=None)[0]  # no c, a, b component
    across = 0.7 + 3.0 * np.cos(beta) - 2.0 * np.sin(beta) + r
    along = 5.0 + q
    shifts = axis_frame(np.stack([across, along], 1), -alpha)  # to the image frame
    got = axis_frame(centre_shifts(shifts, ANGLES, alpha), alpha)
    np.testing.assert_allclose(got[:, 0], 0.7 + 3.0 * np.cos(beta) + r, atol=1e-9)
    np.testing.assert_allclose(got[:, 1], q - q.mean(), atol=1e-9)
