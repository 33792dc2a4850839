"""Phantoms: shapes and values, the ball against geometry, Shepp-Logan against scikit-image."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage, special

from conftest import shared_data
from wedge.phantoms import PHANTOMS, ball, make_phantom, materials, shepp_logan_3d, vesicle


# ----------------------------------------------------------------------------- all phantoms
@pytest.mark.parametrize("name", sorted(PHANTOMS))
def test_registry_phantoms_shape_dtype_range(name: str) -> None:
    shape = (40, 48, 56)
    vol = make_phantom(name, shape)
    assert isinstance(vol, np.ndarray)
    assert vol.dtype == np.float32
    assert vol.shape == shape
    assert np.all(np.isfinite(vol))
    # all three are documented to lie in [0, 1] (float64 sums rounded to float32)
    assert vol.min() >= -1e-6
    assert vol.max() <= 1.0 + 1e-6
    assert vol.max() > 0.5  # something is there
    # zero background at the array corners (every phantom sits inside the box)
    assert np.all(np.abs(vol[[0, 0, -1, -1], [0, -1, 0, -1], [0, -1, -1, 0]]) < 1e-6)


def test_registry_names() -> None:
    assert set(PHANTOMS) == {"shepp-logan", "vesicle", "materials"}


def test_unknown_phantom_lists_known_names() -> None:
    with pytest.raises(ValueError, match="materials, shepp-logan, vesicle"):
        make_phantom("sheep-logan", (32, 32, 32))


@pytest.mark.parametrize("shape", [(32, 32), (0, 32, 32), (32, -1, 32), "abc"])
def test_bad_shape_raises(shape) -> None:
    with pytest.raises(ValueError, match="shape"):
        shepp_logan_3d(shape)


def test_bad_ball_arguments_raise() -> None:
    with pytest.raises(ValueError, match="radius"):
        ball((16, 16, 16), 0.0)
    with pytest.raises(ValueError, match="supersample"):
        ball((16, 16, 16), 3.0, supersample=0)
    with pytest.raises(ValueError, match="centre"):
        ball((16, 16, 16), 3.0, centre=(1.0, 2.0))


# ----------------------------------------------------------------------------- ball
@pytest.mark.parametrize(
    ("radius", "centre"),
    [(8.0, None), (6.3, (20.1, 19.7, 21.45)), (11.7, (19.25, 20.6, 20.0))],
)
def test_ball_volume_matches_four_thirds_pi_r_cubed(radius, centre) -> None:
    vol = ball((40, 40, 40), radius, centre=centre, supersample=4)
    exact = 4.0 / 3.0 * math.pi * radius**3
    # The supersampled ball counts sub-cell centres on a lattice of spacing h = 1/4 inside a
    # sphere of radius R = r/h >= 25 sub-cells; the lattice-point discrepancy of a sphere is
    # of order R^(3/2) points, i.e. a relative error ~ R^(-3/2) < 0.01 for R >= 25: 0.5 %.
    assert abs(vol.sum() / exact - 1.0) < 5e-3
    assert vol.max() == pytest.approx(1.0)
    assert vol.min() == 0.0


@pytest.mark.parametrize("supersample", [1, 4])
def test_ball_column_sums_match_chord_lengths(supersample: int) -> None:
    """Summing along Z gives the line integral 2 sqrt(r² - d²), within 1/supersample.

    Each voxel's value counts the sub-voxel centres inside the ball, so a column sum is the
    mean over its supersample² sub-columns of (lattice points inside) × h, h = 1/supersample.
    Counting points of spacing h in a chord of length L gives L within ±h: the bound is exact.
    """
    r, c = 9.3, np.array([15.2, 16.45, 15.9])
    vol = ball((32, 33, 32), r, centre=c, supersample=supersample).astype(np.float64)
    col = vol.sum(axis=0)  # (Y, X)
    h = 1.0 / supersample
    o = (np.arange(supersample) + 0.5) * h - 0.5
    y = np.arange(33)[:, None, None, None] + o[None, None, :, None] - c[1]
    x = np.arange(32)[None, :, None, None] + o[None, None, None, :] - c[2]
    chord = 2.0 * np.sqrt(np.clip(r**2 - x**2 - y**2, 0.0, None))
    expected = chord.mean(axis=(2, 3))
    assert np.max(np.abs(col - expected)) <= h + 1e-6
    # anti-aliasing makes the profile close on average, not just within the bound
    if supersample > 1:
        assert np.sqrt(np.mean((col - expected) ** 2)) < 0.25 * h


def test_ball_value_scales() -> None:
    a = ball((16, 16, 16), 4.0)
    b = ball((16, 16, 16), 4.0, value=2.5)
    np.testing.assert_allclose(b, 2.5 * a, rtol=1e-6)


# ----------------------------------------------------------------------------- Shepp-Logan
def _skimage_reference(n: int) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    from skimage.transform import resize

    ref = resize(skimage_data.shepp_logan_phantom(), (n, n), anti_aliasing=True)
    return ref[::-1]  # skimage's row 0 is the top (+y); wedge's Y index grows with +y


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_shepp_logan_central_slice_resembles_skimage() -> None:
    n = 64
    ref = _skimage_reference(n)
    vol = shepp_logan_3d((n, n, n), supersample=4)
    centre = 0.5 * (vol[n // 2 - 1] + vol[n // 2])  # the plane z = 0 lies between two slices
    # Kak & Slaney's table puts the small features at z = -0.25 and +0.625, so the central
    # plane shows skull, brain and ellipsoid e only: the match is carried by the outline.
    assert _corr(centre, ref) > 0.85


def test_shepp_logan_feature_plane_matches_skimage_inside_the_skull() -> None:
    n = 64
    ref = _skimage_reference(n)
    # nz = 60 puts a slice centre exactly on z = -0.25: (2k + 1)/60 - 1 = -0.25 for k = 22
    vol = shepp_logan_3d((60, n, n))
    plane = vol[22]
    brain = ndimage.binary_erosion(ndimage.binary_fill_holes(ref > 0.05), iterations=4)
    c = _corr(plane[brain], ref[brain])
    assert c > 0.9
    # the orientation is the textbook one: mirrored images match clearly worse
    assert c > _corr(plane[::-1][brain], ref[brain]) + 0.3
    assert c > _corr(plane[:, ::-1][brain], ref[brain]) + 0.1


def test_shepp_logan_gray_levels() -> None:
    n = 64
    mod = shepp_logan_3d((n, n, n))
    orig = shepp_logan_3d((n, n, n), modified=False)
    # The origin lies inside ellipsoids a and b only: 1 - 0.8 and 2 - 0.98. With n even it
    # is a voxel corner, so look at the 2x2x2 voxels around it.
    core = (slice(n // 2 - 1, n // 2 + 1),) * 3
    np.testing.assert_allclose(mod[core], 0.2, atol=1e-6)
    np.testing.assert_allclose(orig[core], 1.02, atol=1e-6)
    assert mod.max() == pytest.approx(1.0)
    assert orig.max() == pytest.approx(2.0)
    assert mod.min() >= -1e-6 and orig.min() >= -1e-6
    # the skull's outer surface: ellipsoid a reaches y = ±0.92 on the y axis, i.e. index
    # (0.92 + 1) n/2 - 1/2 = 60.94 -> voxel 60 is inside, 61 outside
    row = mod[n // 2, :, n // 2]
    assert row[60] == pytest.approx(1.0) and row[61] == 0.0


# ----------------------------------------------------------------------------- vesicle
def test_vesicle_deterministic_and_seeded() -> None:
    a = vesicle((48, 48, 48), seed=3)
    b = vesicle((48, 48, 48), seed=3)
    c = vesicle((48, 48, 48), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_vesicle_membrane_is_where_documented() -> None:
    shape = (64, 64, 64)
    vol = vesicle(
        shape,
        semi_axes=(0.38, 0.40, 0.30),
        n_bodies=0,
        n_proteins=0,
        membrane_fwhm=2.0,
        membrane_value=0.35,
    )
    c = (np.asarray(shape) - 1) / 2
    # hollow: nothing at the centre; the membrane peaks at 0.35 on every axis at the semi-axes
    assert vol[32, 32, 32] < 1e-6
    assert vol.max() == pytest.approx(0.35, rel=0.02)
    for axis, frac in ((2, 0.38), (1, 0.40), (0, 0.30)):
        line = np.moveaxis(vol, axis, 0)[:, 32, 32].astype(np.float64)
        upper = line[32:]
        k = int(np.argmax(upper))
        # parabolic peak position along the profile, in index units
        y0, y1, y2 = upper[k - 1], upper[k], upper[k + 1]
        peak = 32 + k + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
        # profile taken half a voxel off the centre plane on the other axes: the surface
        # point there is within 0.05 voxel of the semi-axis
        assert peak - c[axis] == pytest.approx(frac * shape[axis], abs=0.15)
        # half maximum at ±1 voxel (FWHM 2)
        assert np.interp(peak + 1.0, np.arange(32, 64), upper) == pytest.approx(0.175, abs=0.02)


def test_vesicle_inner_bodies_inside_and_separate() -> None:
    vol = vesicle((64, 64, 64), n_bodies=4, n_proteins=0, seed=1)
    c = 31.5
    z, y, x = np.ogrid[:64, :64, :64]
    # the default membrane: semi-axes (0.36, 0.37, 0.17) × 64 along (x, y, z)
    q = np.sqrt(((x - c) / 23.04) ** 2 + ((y - c) / 23.68) ** 2 + ((z - c) / 10.88) ** 2)
    inner = (vol > 0.2) & (q < 0.85)
    labels, n = ndimage.label(inner)
    assert n == 4
    # bodies are balls of radius >= 2.5 voxels: each holds at least 4/3 pi 2^3 voxels
    sizes = ndimage.sum_labels(np.ones_like(vol), labels, range(1, n + 1))
    assert sizes.min() > 4 / 3 * math.pi * 2.0**3


def _extents(v: np.ndarray) -> np.ndarray:
    m = v > 0.05 * v.max()
    return np.array(
        [
            np.ptp(np.nonzero(m.any(axis=tuple(j for j in range(3) if j != i)))[0]) + 1
            for i in range(3)
        ],
        dtype=np.float64,
    )


def test_vesicle_resembles_genfire_vesicle() -> None:
    """Built like the 64³ vesicle of GENFIRE/RESIRE: same outline, hollow, mass on the shell."""
    mrcfile = pytest.importorskip("mrcfile")
    path = shared_data("vesicle-genfire", "vesicle.mrc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the file has no machine stamp
        with mrcfile.open(path, permissive=True) as f:
            ref = np.asarray(f.data, dtype=np.float64).transpose(2, 1, 0)  # to (Z, Y, X)
    ours = vesicle((64, 64, 64)).astype(np.float64)
    e_ref, e_ours = _extents(ref), _extents(ours)
    np.testing.assert_allclose(e_ours, e_ref, rtol=0.1)

    def shell_fraction(v: np.ndarray, ext: np.ndarray) -> tuple[float, float]:
        m = v > 0.05 * v.max()
        c = np.array(np.nonzero(m)).mean(axis=1)
        z, y, x = np.ogrid[:64, :64, :64]
        q = np.sqrt(
            ((z - c[0]) / (ext[0] / 2)) ** 2
            + ((y - c[1]) / (ext[1] / 2)) ** 2
            + ((x - c[2]) / (ext[2] / 2)) ** 2
        )
        return v[q < 0.7].sum() / v.sum(), v[(q > 0.8) & (q < 1.05)].sum() / v.sum()

    inner_ref, shell_ref = shell_fraction(ref, e_ref)
    inner_ours, shell_ours = shell_fraction(ours, e_ours)
    # both are hollow shells: most of the mass sits in the outer shell, little inside
    assert shell_ours > 0.5 and shell_ref > 0.5
    assert inner_ours < 0.3 and inner_ref < 0.3


def test_vesicle_bad_arguments() -> None:
    with pytest.raises(ValueError, match="semi_axes"):
        vesicle((32, 32, 32), semi_axes=(0.6, 0.3, 0.3))
    with pytest.raises(ValueError, match="shape"):
        vesicle((8, 32, 32))


# ----------------------------------------------------------------------------- materials
def test_materials_deterministic_and_seeded() -> None:
    a = materials((48, 48, 48), seed=0)
    np.testing.assert_array_equal(a, materials((48, 48, 48), seed=0))
    assert not np.array_equal(a, materials((48, 48, 48), seed=1))


@pytest.mark.parametrize("seed", [0, 1])
def test_materials_atoms_are_separate_points_on_a_shell(seed: int) -> None:
    n, k = 64, 60
    vol = materials((n, n, n), seed=seed, n_atoms=k)
    bare = materials((n, n, n), seed=seed, n_atoms=0)
    atoms = vol - bare
    # the shell: radius 0.13 n around the "sea mine" at fractions (x, y, z) = (0.16, -0.16, 0.02)
    c = 31.5 + np.array([0.02, -0.16, 0.16]) * n
    z, y, x = np.ogrid[:n, :n, :n]
    r = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    assert np.all(atoms[np.abs(r - 0.13 * n) > 4.0] < 1e-3)  # Gaussians of σ 0.7 on the shell
    labels, found = ndimage.label(vol * (np.abs(r - 0.13 * n) < 2.5) > 0.3)
    assert found == k  # point-like and separate: one blob per atom


def test_materials_block_edge_is_smooth_and_ball_edge_is_sharp() -> None:
    n = 64
    vol = materials((n, n, n)).astype(np.float64)
    c0 = np.full(3, (n - 1) / 2)
    # smooth: across a face of the block (centre at fractions (x, y, z) = (0.21, 0.20, -0.04),
    # half-size 0.07 n along its local y, turned 25° about z) the density follows the
    # blurred step 0.5 · erfc((t - a) / (√2 · 1.5)) / 2 (density 0.5, σ = 1.5 voxels)
    centre = c0 + np.array([-0.04, 0.20, 0.21]) * n
    a = 0.07 * n
    t = np.linspace(a - 3.0, a + 4.0, 15)
    ang = math.radians(25.0)
    direction = np.array([0.0, math.cos(ang), -math.sin(ang)])  # local +y in (z, y, x)
    pts = centre[:, None] + direction[:, None] * t[None, :]
    sampled = ndimage.map_coordinates(vol, pts, order=1)
    expected = 0.25 * special.erfc((t - a) / (math.sqrt(2.0) * 1.5))
    # trilinear interpolation of this profile errs by at most max|f''|/8 ≈ 0.007 per axis
    np.testing.assert_allclose(sampled, expected, atol=0.03)
    # sharp: across the big ball's edge (radius 0.10 n, density 0.7) the density drops from
    # 0.7 to 0 within two voxels
    bc = np.rint(c0 + np.array([0.05, -0.18, -0.20]) * n).astype(int)
    line = vol[bc[0], bc[1], bc[2] : bc[2] + 12]
    partial = (line > 0.02) & (line < 0.68)
    assert line[0] == pytest.approx(0.7) and line[-1] < 0.02
    assert 1 <= partial.sum() <= 2
