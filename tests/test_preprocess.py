"""wedge.preprocess: each step against an analytic result, scipy, or the real needle stack."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import polynomial as P
from scipy import ndimage
from scipy.special import comb

import wedge
from conftest import shared_data
from wedge import TiltSeries
from wedge.preprocess import (
    AutoMask,
    background_mask,
    bernstein_basis,
    bin_images,
    critical_exposure,
    crop,
    dose_weight,
    estimate_background,
    exposure_filter,
    find_outliers,
    fourier_downsample,
    normalize_images,
    normalize_mass,
    prepare,
    remove_outliers,
    subtract_background,
    taper_edges,
)


def _series(images, **kw) -> TiltSeries:
    """A series with one distinct tilt per image (the steps do not look at the angles)."""
    n = np.shape(images)[0]
    return TiltSeries(images, np.linspace(-60, 60, n), **kw)


def _bump(ny: int, nx: int, cy: float, cx: float, r: float) -> np.ndarray:
    """A smooth sample of compact support: (1 − d²/r²)² inside radius r, exactly 0 outside."""
    yy, xx = np.mgrid[:ny, :nx]
    d2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / r**2
    return np.where(d2 < 1, (1 - d2) ** 2, 0.0)


def _power_background(ny: int, nx: int, coef: np.ndarray) -> np.ndarray:
    """A bivariate power-basis polynomial on u = y/(Y−1), v = x/(X−1) (numpy.polynomial)."""
    u, v = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    return P.polyval2d(u, v, coef)


# --------------------------------------------------------------------------- background
@pytest.mark.parametrize("degree", [0, 1, 3, 6])
def test_bernstein_basis_matches_the_binomial_formula(degree):
    n = 11
    t = np.linspace(0, 1, n)
    i = np.arange(degree + 1)
    ref = comb(degree, i)[None] * t[:, None] ** i * (1 - t[:, None]) ** (degree - i)
    np.testing.assert_allclose(bernstein_basis(degree, n), ref, rtol=0, atol=1e-14)


def _polynomial_plus_sample():
    """Three 64 × 80 images: a degree-3 background (power basis, its own per image) from
    956 to 1,225 counts, plus a bump of height 400 at a different place in each."""
    ny, nx = 64, 80
    base = np.array([[1000, -120, 60, 30], [80, 50, -40, 0], [-90, 20, 0, 0], [25, 0, 0, 0]])
    bgs, samples = [], []
    for j, (cy, cx) in enumerate([(30, 35), (22, 50), (40, 28)]):
        bgs.append(_power_background(ny, nx, base * (1 + 0.1 * j)))
        samples.append(400 * _bump(ny, nx, cy, cx, 14))
    return np.array(bgs), np.array(samples)


def test_background_of_a_known_polynomial_is_recovered_inside_and_outside_the_mask():
    bg, sample = _polynomial_plus_sample()
    s = _series(bg + sample)
    mask = sample == 0  # the exact support of the sample, per image
    fit = estimate_background(s, degree=3, mask=mask)
    rel = np.abs(fit - bg) / np.abs(bg).max()
    # measured: 5.4e-8 outside and 5.2e-8 under the sample (float32 rounding of ~1200)
    assert rel[mask].max() < 1e-6 and rel[~mask].max() < 1e-6
    out = subtract_background(s, degree=3, mask=mask)
    np.testing.assert_allclose(out.images, sample, rtol=0, atol=1e-6 * np.abs(bg).max())
    # a single (Y, X) mask shared by every image: the union of the three supports
    shared = mask.all(axis=0)
    fit2 = estimate_background(s, degree=3, mask=shared)
    assert np.abs(fit2 - bg).max() / np.abs(bg).max() < 1e-6  # measured 5.3e-8
    # a degree-2 fit cannot represent the cubic terms (measured max error 3.2 counts)
    assert np.abs(estimate_background(s, degree=2, mask=mask) - bg).max() > 1.0


@pytest.mark.parametrize("polarity", ["bright", "dark"])
@pytest.mark.parametrize("gain", [1, 6])
def test_automatic_mask_excludes_the_sample_and_recovers_the_background(rng, polarity, gain):
    """Noise σ = 2 counts; gain 6 makes the background range (733–2351 counts) four times
    the sample's height, which the residual iterations of AutoMask need."""
    bg, sample = _polynomial_plus_sample()
    bg = 1000 + gain * (bg - 1000)
    sign = 1 if polarity == "bright" else -1
    s = _series(bg + sign * sample + rng.normal(0, 2.0, bg.shape))
    rule = AutoMask(polarity=polarity)
    mask = background_mask(s, rule=rule)
    assert not np.any(mask & (sample > 0))  # every sample pixel is excluded
    # measured: 65–75 % of the pixels kept (the sample's support leaves 88 %; noise
    # specks above 3σ take the rest)
    assert mask.mean() > 0.5
    err = estimate_background(s, mask=rule) - bg
    # least squares with 16 coefficients from N pixels of noise σ: rms error ≈ σ √(16/N)
    expected = 2.0 * np.sqrt(16 / mask.sum(axis=(1, 2)))
    rms = np.sqrt((err**2).mean(axis=(1, 2)))
    assert np.all(rms < 2 * expected)  # measured rms/expected 0.77–1.28
    # measured max |error| ≤ 0.72 counts (≤ 5.6e-4 of the background maximum); the bound is
    # one noise σ
    assert np.abs(err).max() < 2.0
    if gain == 1:
        wrong = "dark" if polarity == "bright" else "bright"
        assert np.any(background_mask(s, rule=AutoMask(polarity=wrong)) & (sample > 0))


def test_subtract_background_records_its_rule(rng):
    bg, sample = _polynomial_plus_sample()
    out = subtract_background(_series(bg + sample + rng.normal(0, 2.0, bg.shape)))
    assert out.provenance[-1].startswith("subtract_background(degree=3, mask=auto(smooth=2 px")


# --------------------------------------------------------------------------- intensity
def test_normalize_images_gives_zero_mean_unit_std(rng):
    z = rng.normal(size=(3, 20, 24))
    z = (z - z.mean(axis=(1, 2), keepdims=True)) / z.std(axis=(1, 2), keepdims=True)
    s = _series(
        z * np.array([2.0, 50.0, 0.1])[:, None, None] + np.array([7.0, -300, 1])[:, None, None]
    )
    out = normalize_images(s)
    np.testing.assert_allclose(out.images, z, rtol=0, atol=5e-6)  # measured 6.0e-7


def test_normalize_mass_scales_to_the_median_mass():
    blob = 100 * _bump(32, 40, 15, 20, 9)
    c = np.array([0.8, 1.3, 0.9, 1.1, 1.0])  # probe current per tilt; median 1.0
    s = _series(blob[None] * c[:, None, None])
    out = normalize_mass(s)
    np.testing.assert_allclose(out.images, np.broadcast_to(blob, s.shape), rtol=1e-6, atol=0)
    m = out.images.astype(np.float64).sum(axis=(1, 2))
    np.testing.assert_allclose(m, blob.sum(), rtol=1e-6)
    assert "scale=(0.769231, 1.25)" in out.provenance[-1]  # 1/1.3 and 1/0.8


# --------------------------------------------------------------------------- outliers
def test_hot_pixels_are_removed_and_every_other_pixel_is_untouched(rng):
    ny, nx = 60, 70
    clean = np.zeros((2, ny, nx))
    clean[:, :, 35:] += 100.0  # a sharp edge of 100 σ: edge pixels must survive
    clean += 20 * _bump(ny, nx, 30, 20, 12)[None]
    noisy = clean + rng.normal(0, 1.0, clean.shape)
    # isolated positions (at least 3 px apart), away from the edge column
    ys, xs = np.meshgrid(np.arange(3, ny - 3, 6), np.arange(3, nx - 3, 7), indexing="ij")
    pick = rng.choice(ys.size, 24, replace=False)
    hot = np.zeros(clean.shape, dtype=bool)
    hot[pick % 2, ys.ravel()[pick], xs.ravel()[pick]] = True
    dirty = noisy + np.where(hot, rng.choice([-1, 1], clean.shape) * 60.0, 0.0)
    s = _series(dirty)
    np.testing.assert_array_equal(find_outliers(s), hot)
    out = remove_outliers(s)
    med = ndimage.median_filter(s.images, size=(1, 3, 3), mode="reflect")
    np.testing.assert_array_equal(out.images[hot], med[hot])
    np.testing.assert_array_equal(out.images[~hot], s.images[~hot])  # bit for bit
    assert np.abs(out.images[hot] - clean[hot]).max() < 3.0  # measured 0.94 (noise σ = 1)
    assert out.provenance[-1].endswith("replaced=24)")


# --------------------------------------------------------------------------- resampling
def test_binning_is_the_block_mean_and_scales_pixel_size_and_shifts(rng):
    imgs = rng.normal(size=(3, 12, 18)).astype(np.float32)
    sh = rng.normal(size=(3, 2))
    s = _series(imgs, pixel_size=2.5, shifts=sh)
    out = bin_images(s, factor=3)
    ref = imgs.astype(np.float64).reshape(3, 4, 3, 6, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out.images, ref, rtol=0, atol=1e-6)
    assert out.pixel_size == 7.5
    np.testing.assert_allclose(out.shifts, sh / 3)


def test_binning_trims_the_remainder_and_moves_the_centre_into_the_shifts(rng):
    imgs = rng.normal(size=(2, 13, 16)).astype(np.float32)
    out = bin_images(_series(imgs), factor=2)
    ref = imgs[:, 0:12, :].astype(np.float64).reshape(2, 6, 2, 8, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(out.images, ref, rtol=0, atol=1e-6)
    # rows 0..11 centre on old row 5.5, half a pixel above the old centre 6: dy = +0.5 old
    # pixels, i.e. +0.25 new ones
    np.testing.assert_allclose(out.shifts, [[0, 0.25], [0, 0.25]])
    assert "trimmed=(1, 0)" in out.provenance[-1]


@pytest.mark.parametrize(("shape", "target"), [((48, 48), (16, 16)), ((32, 48), (16, 24))])
def test_fourier_downsample_samples_a_band_limited_image_exactly(shape, target):
    ny, nx = shape
    my, mx = target
    f = ny / my
    waves = [(1.0, 0, 0, 0.0), (3.0, 2, 5, 0.3), (1.5, -4, 3, 1.1), (0.7, 7, -2, -0.4)]

    def image(y, x, py, px):  # cosines with integer cycles per field (all < new Nyquist)
        out = np.zeros(np.broadcast(y, x).shape)
        for a, ky, kx, phi in waves:
            out += a * np.cos(2 * np.pi * (ky * y / py + kx * x / px) + phi)
        return out

    yy, xx = np.mgrid[:ny, :nx]
    s = _series(np.stack([image(yy, xx, ny, nx), 2 * image(yy, xx, ny, nx)]), pixel_size=1.5)
    s = s.replace(shifts=[[3.0, -6.0], [0.0, 1.5]])
    out = fourier_downsample(s, shape=target)
    # new pixel i is the band-limited image at old coordinate f·i + (f − 1)/2
    iy, ix = np.mgrid[:my, :mx]
    ref = image(f * iy + (f - 1) / 2, f * ix + (f - 1) / 2, ny, nx)
    err = np.abs(out.images - np.stack([ref, 2 * ref])).max()
    assert err < 1e-5  # measured 5.3e-7: float32 rounding of values up to 12
    assert out.pixel_size == pytest.approx(1.5 * f)
    np.testing.assert_allclose(out.shifts, np.array([[3.0, -6.0], [0.0, 1.5]]) / f)


def test_fourier_downsample_to_the_same_size_is_the_identity(rng):
    s = _series(rng.normal(size=(2, 10, 12)))
    np.testing.assert_allclose(fourier_downsample(s, shape=(10, 12)).images, s.images, atol=1e-6)


# --------------------------------------------------------------------------- window
def _blob_volume(rng) -> np.ndarray:
    zz, yy, xx = np.mgrid[:20, :24, :30]
    vol = np.zeros((20, 24, 30))
    for _ in range(6):
        c = rng.uniform([5, 5, 6], [15, 19, 24])
        vol += np.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / 8.0)
    return vol.astype(np.float32)


@pytest.mark.parametrize("alpha", [0.0, 90.0])
@pytest.mark.parametrize(("shape", "origin"), [((16, 20), (3, 7)), ((15, 20), None)])
def test_crop_keeps_the_geometry_of_the_projection(rng, alpha, shape, origin):
    """Cropping a projection equals projecting onto the smaller detector with the adjusted
    shifts (off-centre by (2, −1) px, or centred with half a pixel to absorb)."""
    vol = _blob_volume(rng)
    ang = np.array([-40.0, 0.0, 25.0])
    sh = np.array([[1.0, -2.0], [0.0, 0.0], [-1.0, 1.0]])
    kw = dict(tilt_axis_angle=alpha, model="ray", device="cpu")
    full = wedge.project(vol, ang, shifts=sh, **kw)
    out = crop(TiltSeries(full, ang, shifts=sh, tilt_axis_angle=alpha), shape=shape, origin=origin)
    ref = wedge.project(vol, ang, shifts=out.shifts, detector_shape=shape, **kw)
    assert np.abs(out.images - ref).max() < 1e-5  # measured ≤ 1.9e-6 (peak 13.9)
    # without the shift adjustment the geometry is wrong
    bad = wedge.project(vol, ang, shifts=sh, detector_shape=shape, **kw)
    assert np.abs(out.images - bad).max() > 0.5


def test_centred_crop_of_equal_parity_keeps_shifts_none(rng):
    out = crop(_series(rng.normal(size=(2, 12, 14))), shape=(8, 10))
    assert out.shifts is None and "centre_offset=(0, 0)" in out.provenance[-1]


def test_taper_edges_blends_to_the_image_mean(rng):
    imgs = rng.normal(5.0, 2.0, (2, 20, 30))
    s = _series(imgs)
    w = 4
    out = taper_edges(s, width=w).images.astype(np.float64)
    mean = s.images.astype(np.float64).mean(axis=(1, 2))
    for i in range(2):
        for border in (out[i, 0], out[i, -1], out[i, :, 0], out[i, :, -1]):
            np.testing.assert_allclose(border, mean[i], atol=1e-5)
    np.testing.assert_array_equal(out[:, w:-w, w:-w], s.images[:, w:-w, w:-w])
    # two pixels from the top edge, far from the sides: weight (1 − cos(π·2/4))/2 = 1/2
    half = mean[:, None] + 0.5 * (s.images[:, 2, w:-w] - mean[:, None])
    np.testing.assert_allclose(out[:, 2, w:-w], half, atol=1e-5)


# --------------------------------------------------------------------------- dose
def test_exposure_filter_follows_grant_and_grigorieff():
    k = np.array([0.0, 0.05, 0.1, 0.25, 0.5])  # 1/Å
    ne = np.array([np.inf, 0.245 * 0.05**-1.665 + 2.81, 0.245 * 0.1**-1.665 + 2.81,
                   0.245 * 0.25**-1.665 + 2.81, 0.245 * 0.5**-1.665 + 2.81])  # fmt: skip
    np.testing.assert_allclose(critical_exposure(k), ne, rtol=1e-12)
    for dose in (0.0, 3.0, 40.0):
        np.testing.assert_allclose(exposure_filter(k, dose), np.exp(-dose / (2 * ne)), rtol=1e-12)


def test_dose_weight_attenuates_a_cosine_by_the_filter():
    n, px = 32, 2.0
    yy, xx = np.mgrid[:n, :n]
    ky, kx = 3, 5  # cycles per field: k = √(3² + 5²) / (32 · 2 Å)
    k = np.hypot(ky, kx) / (n * px)
    wave = np.cos(2 * np.pi * (ky * yy + kx * xx) / n)
    s = _series(np.stack([10 + wave] * 3), pixel_size=px)
    order = [2, 0, 1]  # image 2 first, then 0, then 1
    out = dose_weight(s, dose_per_tilt=4.0, order=order)
    prior = np.array([4.0, 8.0, 0.0])
    for i in range(3):
        np.testing.assert_allclose(
            out.images[i], 10 + exposure_filter(k, prior[i]) * wave, rtol=0, atol=1e-5
        )
    same = dose_weight(s, accumulated_dose=prior)
    np.testing.assert_array_equal(same.images, out.images)


# --------------------------------------------------------------------------- chain, contract
def test_prepare_is_background_then_outliers_then_mass(rng):
    bg, sample = _polynomial_plus_sample()
    s = _series(bg + sample + rng.normal(0, 2.0, bg.shape), pixel_size=3.0, tilt_axis_angle=90)
    out = prepare(s)
    ref = normalize_mass(remove_outliers(subtract_background(s)))
    np.testing.assert_array_equal(out.images, ref.images)
    assert [p.split("(")[0] for p in out.provenance] == [
        "subtract_background",
        "remove_outliers",
        "normalize_mass",
    ]
    assert out.shape == s.shape and out.pixel_size == 3.0 and out.shifts is None
    assert out.tilt_axis_angle == 90
    binned = prepare(s, bin_factor=2, outlier_threshold=None)
    assert binned.shape == (3, 32, 40) and binned.provenance[-1].startswith("bin_images(")


STEPS = [
    ("subtract_background", lambda s: subtract_background(s, degree=1)),
    ("normalize_images", normalize_images),
    ("normalize_mass", normalize_mass),
    ("remove_outliers", remove_outliers),
    ("bin_images", lambda s: bin_images(s, factor=2)),
    ("fourier_downsample", lambda s: fourier_downsample(s, shape=8)),
    ("crop", lambda s: crop(s, shape=(16, 19), origin=(1, 2))),
    ("taper_edges", lambda s: taper_edges(s, width=3)),
    ("dose_weight", lambda s: dose_weight(s, dose_per_tilt=2.0)),
]


@pytest.mark.parametrize(("name", "step"), STEPS, ids=[n for n, _ in STEPS])
def test_steps_record_themselves_and_never_modify_their_input(rng, name, step):
    imgs = 50 + 30 * _bump(32, 32, 16, 16, 5)[None] + rng.normal(0, 1, (3, 32, 32))
    s = _series(imgs, provenance=("read",))
    before = s.images.copy()
    out = step(s)
    np.testing.assert_array_equal(s.images, before)
    assert s.provenance == ("read",)
    assert out.provenance[:-1] == ("read",) and out.provenance[-1].startswith(name + "(")
    assert out.images.dtype == np.float32


def test_focal_series_are_processed_image_by_image(rng):
    imgs = 50 + 30 * _bump(32, 32, 16, 16, 5)[None] + rng.normal(0, 1, (4, 32, 32))
    focal = TiltSeries(imgs.reshape(2, 2, 32, 32), [-10.0, 10.0], defocus=[[0, 100], [0, 100]])
    flat = _series(imgs)
    for step in (lambda s: subtract_background(s, degree=1), normalize_images, remove_outliers):
        np.testing.assert_array_equal(step(focal).images.reshape(4, 32, 32), step(flat).images)
    assert bin_images(focal, factor=2).shape == (2, 2, 16, 16)


# --------------------------------------------------------------------------- bad input
def _bad_case(kind: str, rng) -> TiltSeries:
    if kind == "single":
        return TiltSeries(rng.normal(1, 1, (1, 8, 8)), [0.0])
    if kind == "constant":
        return _series(np.stack([np.full((8, 8), 3.0)] * 3))
    if kind == "zeros":
        return _series(np.zeros((3, 8, 8)))
    return _series(rng.normal(1, 1, (3, 8, 8)))


def _one_row(n: int) -> np.ndarray:
    """Background pixels on a single row: no information on the Y dependence."""
    m = np.zeros((n, n), dtype=bool)
    m[2] = True
    return m


@pytest.mark.parametrize(
    ("kind", "call", "match"),
    [
        ("single", normalize_mass, "at least two tilts"),
        ("single", prepare, "at least two tilts"),
        ("constant", normalize_images, "constant"),
        ("zeros", normalize_images, "constant"),
        ("zeros", normalize_mass, "integrate to 0"),
        ("varied", lambda s: subtract_background(s, mask=np.zeros((8, 8), bool)), "removes every"),
        ("varied", lambda s: subtract_background(s, mask=_one_row(8)), "cannot determine"),
        ("varied", lambda s: subtract_background(s, degree=9), "degree ≤ 8"),
        ("varied", lambda s: subtract_background(s, mask=np.ones((8, 8))), "boolean"),
        ("varied", lambda s: subtract_background(s, mask=np.ones((3, 8), bool)), "mask has shape"),
        ("varied", lambda s: bin_images(s, factor=0), "whole number ≥ 1"),
        ("varied", lambda s: bin_images(s, factor=-2), "whole number ≥ 1"),
        ("varied", lambda s: bin_images(s, factor=1.5), "whole number ≥ 1"),
        ("varied", lambda s: bin_images(s, factor=9), "larger than"),
        ("varied", lambda s: dose_weight(s, dose_per_tilt=-1.0), "≥ 0"),
        ("varied", lambda s: dose_weight(s, accumulated_dose=[0, -2, 1]), "negative"),
        ("varied", lambda s: dose_weight(s, dose_per_tilt=1.0, order=[0, 0, 1]), "exactly once"),
        ("varied", dose_weight, "either dose_per_tilt"),
        ("varied", lambda s: fourier_downsample(s, shape=(4, 2)), "aspect ratio"),
        ("varied", lambda s: crop(s, shape=(4, 4), origin=(6, 0)), "runs past"),
        ("varied", lambda s: taper_edges(s, width=5), "does not fit"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(rng, kind, call, match):
    with pytest.raises(ValueError, match=match):
        call(_bad_case(kind, rng))


def test_public_names_resolve_and_rotate_images_stays_importable():
    import wedge.preprocess as pp
    from wedge.preprocess import rotate_images

    assert all(callable(getattr(pp, name)) for name in pp.__all__)
    assert pp.rotate_images is rotate_images and "prepare" in pp.__all__


def test_only_tilt_series_are_accepted():
    with pytest.raises(TypeError, match="wedge.TiltSeries"):
        subtract_background(np.zeros((3, 8, 8)))


# --------------------------------------------------------------------------- real data
def test_prepare_on_the_needle_zeroes_the_background_and_evens_the_mass():
    """The ETSpy needle (77 tilts, int16 with background ≈ −31,880): after `prepare` the
    vacuum corners are near 0, and in the frame aligned by ETSpy's own shifts the mass in
    the field common to all tilts varies less across tilts than before normalisation."""
    s = wedge.read_tiltseries(shared_data("needle-haadf-stem", "HAADF.mrc"), tilt_axis_angle=90)
    shifts = np.loadtxt(shared_data("needle-haadf-stem", "DERIVED_etspy_alignment.txt"))[:, 1:]
    before = prepare(s, normalize=False)
    after = normalize_mass(before)
    assert after.shape == s.shape and after.tilt_axis_angle == 90  # frame geometry kept
    corners = [np.s_[:, :32, :32], np.s_[:, :32, -32:], np.s_[:, -32:, :32], np.s_[:, -32:, -32:]]
    raw = np.array([s.images[c].mean(axis=(1, 2)) for c in corners])
    assert np.all(raw < -31800)  # as read: the int16 offset
    vac = np.array([after.images[c].astype(np.float64).mean(axis=(1, 2)) for c in corners])
    # measured: |mean of each 32×32 corner| ≤ 0.69 counts over all 77 tilts, from −31,877
    # to −31,898 as read (vacuum noise σ ≈ 4.2 counts per pixel)
    assert np.abs(vac).max() < 1.2

    def common_field_mass(series):
        moved = np.stack(
            [
                ndimage.shift(im.astype(np.float64), sh, order=1, mode="constant", cval=np.nan)
                for im, sh in zip(series.images, shifts, strict=True)
            ]
        )
        ok = np.all(np.isfinite(moved), axis=0)
        rows, cols = np.flatnonzero(ok.any(1)), np.flatnonzero(ok.any(0))
        m = moved[:, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].sum(axis=(1, 2))
        return m.std() / m.mean()

    spread_before, spread_after = common_field_mass(before), common_field_mass(after)
    # measured: 1.31 % before, 1.06 % after (relative std over the 77 tilts)
    assert spread_after < 0.9 * spread_before
    total = after.images.astype(np.float64).sum(axis=(1, 2))
    # measured 2.8e-10 (1.9 % before normalisation): the step's definition
    assert total.std() / total.mean() < 1e-6
