"""Tilt-series simulation: angles, error draws, shot noise, geometry of the images, saving."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from wedge.phantoms import ball
from wedge.simulate import (
    SimulationOptions,
    SimulationResult,
    add_poisson_noise,
    draw_acquisition,
    save_simulation,
    simulate_tiltseries,
    tilt_angles,
)
from wedge.tiltseries import TiltSeries


# ----------------------------------------------------------------------------- tilt angles
def test_tilt_angles_default_includes_both_ends() -> None:
    a = tilt_angles()
    assert a.size == 61
    assert a[0] == -60.0 and a[-1] == 60.0
    np.testing.assert_allclose(np.diff(a), 2.0)


def test_tilt_angles_resire_series() -> None:
    a = tilt_angles((-70, 70), 3.5)  # RESIRE's vesicle test: 41 projections
    assert a.size == 41
    assert a[0] == -70.0 and a[-1] == 70.0


def test_tilt_angles_float_step_lands_on_the_end() -> None:
    a = tilt_angles((-0.3, 0.3), 0.1)  # 0.6 / 0.1 = 5.999999999999999 in floating point
    assert a.size == 7
    assert a[-1] == 0.3


def test_tilt_angles_step_that_does_not_fit_stops_below_the_end() -> None:
    a = tilt_angles((-60, 60), 7.0)
    assert a[0] == -60.0 and a[-1] == 59.0
    assert a.size == 18
    np.testing.assert_allclose(np.diff(a), 7.0)


def test_tilt_angles_single_and_half_turn() -> None:
    np.testing.assert_array_equal(tilt_angles((10, 10), 2.0), [10.0])
    a = tilt_angles((0, 177), 3.0)  # the AET convention 0..177°
    assert a.size == 60 and a[-1] == 177.0
    a = tilt_angles((-60, 60), 200.0)  # a step longer than the range: the first angle only
    np.testing.assert_array_equal(a, [-60.0])


@pytest.mark.parametrize(
    ("tilt_range", "step", "match"),
    [
        ((-60, 60), 0.0, "step"),
        ((-60, 60), -2.0, "step"),
        ((-60, 60), float("nan"), "step"),
        ((60, -60), 2.0, "reversed"),
        ((-60, float("inf")), 2.0, "finite"),
        ((-60,), 2.0, "two numbers"),
        ("ab", 2.0, "two numbers"),
    ],
)
def test_tilt_angles_bad_input(tilt_range, step, match) -> None:
    with pytest.raises(ValueError, match=match):
        tilt_angles(tilt_range, step)


# ----------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"dose": -5.0}, "dose"),
        ({"dose": 0.0}, "dose"),
        ({"dose": float("nan")}, "dose"),
        ({"step": 0.0}, "step"),
        ({"tilt_range": (30, -30)}, "reversed"),
        ({"shift_sigma": -1.0}, "shift_sigma"),
        ({"angle_sigma": -0.1}, "angle_sigma"),
        ({"tilt_axis_error": float("inf")}, "tilt_axis_error"),
        ({"model": "raytrace"}, "model"),
        ({"seed": -1}, "seed"),
    ],
)
def test_options_bad_input_raises(kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        SimulationOptions(**kw)


def test_options_normalise_types() -> None:
    o = SimulationOptions(tilt_range=[-40, 40], step=4, dose=100)
    assert o.tilt_range == (-40.0, 40.0) and isinstance(o.step, float) and o.dose == 100.0


# ----------------------------------------------------------------------------- error draws
def test_draw_acquisition_spreads_match_requested_sigmas() -> None:
    opts = SimulationOptions(tilt_range=(-60, 60), step=0.1, shift_sigma=2.5, angle_sigma=1.0)
    true, recorded, shifts = draw_acquisition(opts)
    n = true.size
    assert n == 1201
    np.testing.assert_allclose(true, tilt_angles((-60, 60), 0.1))
    # sample standard deviations of N(0, σ²) draws have standard error σ / sqrt(2 (m - 1));
    # allow 4 standard errors; the means have standard error σ / sqrt(m)
    err = recorded - true
    assert abs(err.std(ddof=1) - 1.0) < 4 * 1.0 / math.sqrt(2 * (n - 1))
    assert abs(err.mean()) < 4 * 1.0 / math.sqrt(n)
    m = shifts.size
    assert shifts.shape == (n, 2)
    assert abs(shifts.std(ddof=1) - 2.5) < 4 * 2.5 / math.sqrt(2 * (m - 1))
    assert np.all(np.abs(shifts.mean(axis=0)) < 4 * 2.5 / math.sqrt(n))
    # dx and dy are independent draws
    assert abs(np.corrcoef(shifts.T)[0, 1]) < 4 / math.sqrt(n)


def test_draw_acquisition_seeded_and_independent_streams() -> None:
    base = SimulationOptions(step=5.0, shift_sigma=1.0, angle_sigma=0.5, seed=7)
    t1, r1, s1 = draw_acquisition(base)
    t2, r2, s2 = draw_acquisition(base)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(s1, s2)
    # switching the angle errors off leaves the shifts as they were
    _, r3, s3 = draw_acquisition(dataclasses.replace(base, angle_sigma=0.0))
    np.testing.assert_array_equal(s3, s1)
    np.testing.assert_array_equal(r3, t1)
    # another seed gives other draws
    _, r4, s4 = draw_acquisition(dataclasses.replace(base, seed=8))
    assert not np.allclose(s4, s1) and not np.allclose(r4, r1)


def test_draw_acquisition_without_errors_is_exact() -> None:
    true, recorded, shifts = draw_acquisition(SimulationOptions())
    np.testing.assert_array_equal(recorded, true)
    assert not np.any(shifts)


# ----------------------------------------------------------------------------- shot noise
@pytest.mark.parametrize(("value", "dose"), [(0.8, 50.0), (3.0, 2.0), (0.05, 10.0)])
def test_poisson_noise_mean_and_variance_follow_dose(value: float, dose: float) -> None:
    m = 200 * 200
    img = np.full((200, 200), value, dtype=np.float32)
    out = add_poisson_noise(img, dose, rng=1)
    assert out.dtype == np.float32 and out.shape == img.shape
    noisy = out.astype(np.float64)
    # counts k ~ Poisson(λ), λ = value · dose; noisy = k / dose
    lam = value * dose
    mean_se = math.sqrt(lam) / dose / math.sqrt(m)
    assert abs(noisy.mean() - value) < 4 * mean_se
    # variance of the sample variance of Poisson counts: (μ4 - σ⁴)/m = (λ + 2λ²)/m
    var_expected = lam / dose**2
    var_se = math.sqrt((lam + 2 * lam**2) / m) / dose**2
    assert abs(noisy.var(ddof=1) - var_expected) < 4 * var_se
    # the values are counts / dose
    np.testing.assert_allclose(noisy * dose, np.rint(noisy * dose), atol=1e-3)


def test_poisson_noise_clips_negative_and_is_seeded() -> None:
    img = np.array([[-1.0, 0.0, 2.0]] * 100, dtype=np.float32)
    a = add_poisson_noise(img, 10.0, rng=3)
    assert a.dtype == np.float32
    assert np.all(a[:, :2] == 0.0)
    np.testing.assert_array_equal(a, add_poisson_noise(img, 10.0, rng=3))
    assert not np.array_equal(a, add_poisson_noise(img, 10.0, rng=4))


@pytest.mark.parametrize("dose", [0.0, -1.0, float("inf")])
def test_poisson_noise_bad_dose(dose: float) -> None:
    with pytest.raises(ValueError, match="dose"):
        add_poisson_noise(np.ones((4, 4)), dose)


# ----------------------------------------------------------------------------- simulation
def _projectors_available() -> bool:
    try:
        from wedge.projectors import project  # noqa: F401
    except ImportError:
        return False
    return True


needs_projectors = pytest.mark.skipif(
    not _projectors_available(), reason="wedge.projectors is not available yet"
)


def _centroids(images: np.ndarray) -> np.ndarray:
    n, ny, nx = images.shape
    yy, xx = np.mgrid[:ny, :nx]
    tot = images.sum(axis=(1, 2))
    return np.stack(
        [(images * xx).sum(axis=(1, 2)) / tot, (images * yy).sum(axis=(1, 2)) / tot], axis=1
    )


@needs_projectors
@pytest.mark.parametrize("tilt_axis_error", [0.0, 12.0])
def test_simulated_images_follow_the_true_geometry(tilt_axis_error: float) -> None:
    """An off-centre ball lands where wedge's convention puts it, shifted by the true shifts.

    The image centroid of a ball at p (relative to the centre (N-1)/2) must be
    (Z(φ) Y(θ) p)[:2] + (dx, dy) + (N-1)/2, worked out here by hand, independently of the
    projector; and the line integrals must keep the ball's mass.
    """
    n = 32
    centre = np.array([18.0, 12.5, 20.0])  # (z, y, x) index
    vol = ball((n, n, n), 5.0, centre=centre)
    opts = SimulationOptions(
        tilt_range=(-60, 60),
        step=20.0,
        shift_sigma=1.5,
        angle_sigma=1.0,
        tilt_axis_error=tilt_axis_error,
        seed=11,
    )
    res = simulate_tiltseries(vol, opts, pixel_size=2.5)
    c = (n - 1) / 2
    p = centre[::-1] - c  # (x, y, z)
    th = np.deg2rad(res.true_angles)
    ph = math.radians(tilt_axis_error)
    u0 = p[0] * np.cos(th) + p[2] * np.sin(th)  # Y(θ) p, then Z(φ)
    v0 = np.full_like(u0, p[1])
    u = math.cos(ph) * u0 - math.sin(ph) * v0 + res.true_shifts[:, 0] + c
    v = math.sin(ph) * u0 + math.cos(ph) * v0 + res.true_shifts[:, 1] + c
    got = _centroids(res.series.images.astype(np.float64))
    np.testing.assert_allclose(got[:, 0], u, atol=0.05)
    np.testing.assert_allclose(got[:, 1], v, atol=0.05)
    np.testing.assert_allclose(
        res.series.images.sum(axis=(1, 2)), vol.sum(dtype=np.float64), rtol=2e-3
    )
    # the user sees the recorded angles, no shifts, the nominal tilt axis
    s = res.series
    assert isinstance(s, TiltSeries)
    np.testing.assert_array_equal(s.angles, draw_acquisition(opts)[1])
    assert not np.allclose(s.angles, res.true_angles)
    assert s.shifts is None and s.euler is None and s.tilt_axis_angle == 0.0
    assert s.pixel_size == 2.5
    assert res.true_tilt_axis_angle == tilt_axis_error
    np.testing.assert_array_equal(res.true_euler[:, 0], tilt_axis_error)
    np.testing.assert_array_equal(res.true_euler[:, 1], res.true_angles)
    np.testing.assert_array_equal(res.volume, vol)


@needs_projectors
def test_simulated_noise_follows_dose() -> None:
    vol = ball((24, 24, 24), 8.0)
    clean = simulate_tiltseries(vol, SimulationOptions(step=30.0)).series.images
    opts = SimulationOptions(step=30.0, dose=20.0, seed=5)
    noisy = simulate_tiltseries(vol, opts).series.images
    np.testing.assert_array_equal(noisy, simulate_tiltseries(vol, opts).series.images)
    # standardised residuals (noisy - clean) / sqrt(clean / dose) have mean 0, variance 1
    lam = np.clip(clean.astype(np.float64), 0, None)
    inside = lam > 1.0
    z = (noisy[inside] - lam[inside]) / np.sqrt(lam[inside] / 20.0)
    m = z.size
    assert abs(z.mean()) < 4 / math.sqrt(m)
    assert abs(z.var() - 1.0) < 4 * math.sqrt(2.5 / m)  # Poisson λ ≥ 20: kurtosis ≈ 3
    assert np.all(noisy[~(clean > 0)] == 0)


def test_simulate_bad_input() -> None:
    with pytest.raises(ValueError, match="3D"):
        simulate_tiltseries(np.zeros((8, 8)), SimulationOptions())
    with pytest.raises(ValueError, match="NaN"):
        simulate_tiltseries(np.full((8, 8, 8), np.nan), SimulationOptions())
    with pytest.raises(ValueError, match="pixel_size"):
        simulate_tiltseries(np.zeros((8, 8, 8)), SimulationOptions(), pixel_size=0.0)
    with pytest.raises(ValueError, match="SimulationOptions"):
        simulate_tiltseries(np.zeros((8, 8, 8)), {"dose": 10})


@needs_projectors
def test_simulate_accepts_torch_volume() -> None:
    vol = ball((16, 16, 16), 4.0)
    a = simulate_tiltseries(torch.from_numpy(vol), SimulationOptions(step=30.0))
    b = simulate_tiltseries(vol, SimulationOptions(step=30.0))
    assert isinstance(a.volume, np.ndarray)
    np.testing.assert_allclose(a.series.images, b.series.images, atol=1e-5)


# ----------------------------------------------------------------------------- saving
def _handmade_result() -> SimulationResult:
    rng = np.random.default_rng(0)
    opts = SimulationOptions(tilt_range=(-40, 40), step=20.0, shift_sigma=1.0, angle_sigma=0.5)
    true, recorded, shifts = draw_acquisition(opts)
    images = rng.random((true.size, 12, 10)).astype(np.float32)
    series = TiltSeries(images, recorded, pixel_size=3.2)
    vol = rng.random((8, 12, 10)).astype(np.float32)
    return SimulationResult(series, true, shifts, 7.5, vol, opts)


def test_save_simulation_round_trip(tmp_path) -> None:
    pytest.importorskip("wedge.io")
    mrcfile = pytest.importorskip("mrcfile")
    res = _handmade_result()
    paths = save_simulation(res, tmp_path, stem="run1")
    assert paths == {
        "tiltseries": tmp_path / "run1.mrc",
        "tlt": tmp_path / "run1.tlt",
        "volume": tmp_path / "run1_truth.mrc",
        "truth": tmp_path / "run1_truth.json",
    }
    assert all(p.is_file() for p in paths.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    with mrcfile.open(paths["tiltseries"]) as m:
        np.testing.assert_array_equal(m.data, res.series.images)
        assert float(m.voxel_size.x) == pytest.approx(3.2)
    with mrcfile.open(paths["volume"]) as m:
        np.testing.assert_array_equal(m.data, res.volume)
    tlt = np.loadtxt(paths["tlt"])
    np.testing.assert_allclose(tlt, res.series.angles, atol=1e-3)
    meta = json.loads(paths["truth"].read_text())
    np.testing.assert_array_equal(meta["true_angles_deg"], res.true_angles)
    np.testing.assert_array_equal(meta["true_shifts_px"], res.true_shifts)
    assert meta["true_tilt_axis_angle_deg"] == 7.5
    assert meta["options"]["angle_sigma"] == 0.5


def test_save_simulation_bad_input(tmp_path) -> None:
    res = _handmade_result()
    with pytest.raises(ValueError, match="directory"):
        save_simulation(res, tmp_path / "missing")
    with pytest.raises(ValueError, match="stem"):
        save_simulation(res, tmp_path, stem="a/b")
    with pytest.raises(ValueError, match="SimulationResult"):
        save_simulation(res.series, tmp_path)
