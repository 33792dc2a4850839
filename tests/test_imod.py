"""IMOD alignment files (.xf, .ali) and AreTomo .aln, checked against independent references.

* apply_xf against scipy.ndimage.affine_transform with the matrix built here from IMOD's
  documented formula (homogeneous matrices in index space), and against the analytic
  position of a spot;
* the .xf ↔ wedge conversion against wedge's own projector: raw projections with known
  shifts and tilt axis, aligned by the .xf, equal plain single-axis projections;
* the .aln reading against AreTomo's own IMOD export formula (AreTomo2 CSaveXF).
"""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

import wedge
from wedge.io import (
    alignment_from_xf,
    apply_xf,
    compose_xf,
    invert_xf,
    read_aln,
    read_imod_alignment,
    read_xf,
    write_ali,
    write_tiltseries,
    write_xf,
    xf_from_alignment,
)


def rot(deg: float) -> np.ndarray:
    """Counter-clockwise rotation of (x, y) columns."""
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def xf_of(a: np.ndarray, d) -> np.ndarray:
    return np.concatenate([a, np.asarray(d, dtype=float)[:, None]], axis=1)[None]


CASES = {
    "rotation": (rot(17.0), [0.0, 0.0]),
    "scaling": (np.diag([1.1, 0.93]), [0.0, 0.0]),
    "shift": (np.eye(2), [3.3, -2.6]),
    "rotation+skew+shift": (rot(-31.0) @ np.array([[1.05, 0.04], [0.0, 0.97]]), [-4.2, 1.7]),
}


@pytest.fixture(scope="module")
def smooth_image() -> np.ndarray:
    rng = np.random.default_rng(7)
    img = ndimage.gaussian_filter(rng.standard_normal((50, 64)), 3.0)
    return (img / img.std()).astype(np.float32)


# ---------------------------------------------------------------------------- .xf files


def test_read_xf_parses_imod_layout_and_write_xf_reproduces_it(tmp_path):
    # an IMOD-style line (4f12.7, 2f12.3): a rotation by -3° (cos 3° = 0.9986295,
    # sin 3° = 0.0523360) and a shift
    line = "   0.9986295   0.0523360  -0.0523360   0.9986295      12.345      -6.789"
    p = tmp_path / "a.xf"
    p.write_text(line + "\n\n")  # AreTomo and others end with a blank line
    xf = read_xf(p, n_views=1)
    np.testing.assert_allclose(xf[0, :, :2], rot(-3.0), atol=5e-8)
    np.testing.assert_array_equal(xf[0, :, 2], [12.345, -6.789])
    out = write_xf(tmp_path / "b.xf", xf)
    assert out.read_text() == line + "\n"
    assert not list(tmp_path.glob(".*wedge-tmp*"))  # written atomically, nothing left over


def test_write_read_xf_round_trip_precision(tmp_path):
    rng = np.random.default_rng(3)
    matrices = rot(85.3)[None] * rng.uniform(0.98, 1.02, (5, 1, 1))
    xf = np.concatenate([matrices, rng.uniform(-300, 300, (5, 2, 1))], axis=2)
    back = read_xf(write_xf(tmp_path / "r.xf", xf))
    assert np.abs(back[:, :, :2] - xf[:, :, :2]).max() <= 5e-8  # 7 decimals
    assert np.abs(back[:, :, 2] - xf[:, :, 2]).max() <= 5e-4  # 3 decimals


@pytest.mark.parametrize(
    ("text", "n_views", "message"),
    [
        ("1 0 0 1 0\n", None, "expected 6 numbers"),
        ("1 0 0 1 0 0 7\n", None, "expected 6 numbers"),
        ("1 0 0 1 nan 0\n", None, "NaN or Inf"),
        ("1 0 0 1 0 x\n", None, "is not six numbers"),
        ("1 2 2 4 0 0\n", None, "not invertible"),
        ("1 0 0 1 0 0\n1 0 0 1 0 0\n", 3, "has 2 transforms but the stack has 3 views"),
        ("\n\n", None, "holds no transforms"),
    ],
)
def test_read_xf_refuses_malformed_files_in_one_sentence(tmp_path, text, n_views, message):
    p = tmp_path / "bad.xf"
    p.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_xf(p, n_views=n_views)


# ---------------------------------------------------------------------------- apply_xf


@pytest.mark.parametrize("case", list(CASES))
def test_apply_xf_equals_scipy_affine_transform_with_independent_matrix(smooth_image, case):
    a, d = CASES[case]
    ny, nx = smooth_image.shape
    out = apply_xf(smooth_image, xf_of(a, d))[0]
    # the same map built from IMOD's formula X' = A X + D (centre at index (N - 1)/2) as
    # 3x3 homogeneous matrices: index (row, col) -> centred (x, y) -> inverse -> back
    h = np.eye(3)
    h[:2, :2], h[:2, 2] = a, d
    swap = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]])
    centre = np.eye(3)
    centre[:2, 2] = [(ny - 1) / 2, (nx - 1) / 2]
    m = centre @ swap @ np.linalg.inv(h) @ swap @ np.linalg.inv(centre)
    ref = ndimage.affine_transform(
        smooth_image.astype(np.float64),
        m[:2, :2],
        offset=m[:2, 2],
        order=1,
        mode="constant",
        cval=float(smooth_image.mean()),  # newstack's fill: the image mean
    )
    # measured max difference 1.2e-7 (float32 output) for every case
    assert np.abs(out - ref).max() < 1e-5


@pytest.mark.parametrize("case", list(CASES))
def test_apply_xf_moves_a_spot_to_a_times_p_plus_d(case):
    a, d = CASES[case]
    ny, nx = 50, 64
    yy, xx = np.meshgrid(np.arange(ny) - (ny - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    p = np.array([7.5, -5.0])
    spot = np.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * 3.0**2))
    out = apply_xf(spot, xf_of(a, d), fill=0.0)[0]
    centroid = np.array([(out * xx).sum(), (out * yy).sum()]) / out.sum()
    # measured: at most 0.0084 px (scaling case); a centre at N/2 instead of (N - 1)/2
    # would move the spot by (I - A)(0.5, 0.5), 0.15-0.3 px in the rotation cases
    np.testing.assert_allclose(centroid, a @ p + np.asarray(d), atol=0.02)


@pytest.mark.parametrize("case", list(CASES))
def test_apply_xf_then_its_inverse_returns_the_interior(smooth_image, case):
    xf = xf_of(*CASES[case])
    np.testing.assert_allclose(compose_xf(xf, invert_xf(xf))[0], np.eye(2, 3), atol=1e-12)
    back = apply_xf(apply_xf(smooth_image, xf, order=3), invert_xf(xf), order=3)[0]
    # cubic B-spline twice: measured max 6.1e-4 on an image of max |value| 3.0
    assert np.abs(back - smooth_image)[16:-16, 16:-16].max() < 1e-3


def test_apply_xf_refuses_bad_arguments(smooth_image):
    xf = xf_of(np.eye(2), [0, 0])
    with pytest.raises(ValueError, match="3 transforms were given for 2 images"):
        apply_xf(np.stack([smooth_image] * 2), np.repeat(xf, 3, axis=0))
    with pytest.raises(ValueError, match="order must be 0, 1 or 3"):
        apply_xf(smooth_image, xf, order=2)
    with pytest.raises(ValueError, match="NaN or Inf"):
        apply_xf(np.full((4, 4), np.nan), xf)


def test_write_ali_writes_the_transformed_stack_with_pixel_size(tmp_path, smooth_image):
    images = np.stack([smooth_image, smooth_image[::-1]])
    series = wedge.TiltSeries(images, [-30.0, 30.0], pixel_size=2.5)
    xf = np.concatenate([xf_of(*CASES["rotation"]), xf_of(*CASES["shift"])])
    before = series.images.copy()
    out = write_ali(tmp_path / "s.ali", series, xf)
    with mrcfile.open(out) as mrc:
        np.testing.assert_array_equal(mrc.data, apply_xf(images, xf))
        assert float(mrc.voxel_size.x) == pytest.approx(2.5)
        assert mrc.header.ispg == 0  # an image stack, as newstack writes
    np.testing.assert_array_equal(series.images, before)  # input untouched
    assert not list(tmp_path.glob(".*wedge-tmp*"))
    with pytest.raises(ValueError, match="give pixel_size="):
        write_ali(tmp_path / "t.ali", images, xf)
    with pytest.raises(ValueError, match="written as MRC"):
        write_ali(tmp_path / "t.tif", series, xf)


# ------------------------------------------------- .xf <-> wedge shifts and tilt axis


@pytest.fixture(scope="module")
def blob_volume() -> np.ndarray:
    """Smooth blobs (σ 3.5-5 voxels) so that resampling errors stay small."""
    nz, ny, nx = 24, 48, 48
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in (nz, ny, nx)), indexing="ij")
    vol = np.zeros((nz, ny, nx), np.float32)
    for cx, cy, cz, s in [(6, -5, 2, 4.0), (-7, 6, -3, 3.5), (0, 0, 0, 5.0)]:
        vol += np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) / (2 * s * s))
    return vol


@pytest.mark.parametrize("alpha", [23.0, -67.0])
def test_xf_from_alignment_turns_wedge_projections_into_single_axis_ones(blob_volume, alpha):
    angles = [-40.0, 0.0, 35.0]
    shifts = np.array([[2.5, -1.25], [-3.0, 0.75], [1.5, 2.0]])
    raw = wedge.project(blob_volume, angles, shifts=shifts, tilt_axis_angle=alpha, model="ray-3d")
    ideal = wedge.project(blob_volume, angles, model="ray-3d")
    ny, nx = ideal.shape[1:]
    yy, xx = np.meshgrid(np.arange(ny) - (ny - 1) / 2, np.arange(nx) - (nx - 1) / 2, indexing="ij")
    # pixels whose source lies inside the raw image whatever the rotation
    disk = np.hypot(xx, yy) <= (min(ny, nx) - 1) / 2 - np.abs(shifts).max() - 2
    scale = np.abs(ideal).max()

    def error(s, a):
        aligned = apply_xf(raw, xf_from_alignment(s, a, (ny, nx)))
        return np.abs(aligned - ideal)[:, disk].max() / scale

    # measured 0.0149 (α = 23°) and 0.0149 (α = -67°): bilinear resampling here and in
    # the projector's trilinear sampling of the rotated volume
    assert error(shifts, alpha) < 0.02
    # wrong conventions fail by far: measured 0.43-0.50 (α negated), 0.62-0.66 (shifts)
    assert error(shifts, -alpha) > 0.3
    assert error(-shifts, alpha) > 0.3
    # and the conversion inverts exactly
    s_back, a_back = alignment_from_xf(xf_from_alignment(shifts, alpha), (ny, nx))
    np.testing.assert_allclose(s_back, shifts, atol=1e-12)
    assert a_back == pytest.approx(alpha, abs=1e-12)


# three lines of a real etomo .xf (IMOD 4.12.17; teamtomo/etomofiles, tests/data/TS_001),
# whose etomo setup gives the tilt-axis rotation angle ImageRotationA = 83.9
ETOMO_XF = """\
   0.1020875   0.9947760  -0.9947760   0.1020875       2.395      -3.871
   0.1020266   0.9947821  -0.9947821   0.1020266      13.564      11.271
   0.1004192   0.9949457  -0.9949457   0.1004192      -3.070       0.039
"""


def test_a_real_etomo_xf_gives_imods_rotation_angle_as_tilt_axis_angle(tmp_path):
    p = tmp_path / "TS_001.xf"
    p.write_text(ETOMO_XF)
    for view in read_xf(p, n_views=3):
        _, alpha = alignment_from_xf(view, (4096, 4096))
        # measured 84.14-84.24°: tiltalign refined the 83.9° set up in etomo; the other
        # sign would give -84°
        assert alpha == pytest.approx(83.9, abs=0.5)


def test_alignment_from_xf_refuses_what_a_rotation_cannot_represent():
    shape = (64, 64)  # corner at 44.5 px from the centre
    xf = xf_from_alignment(np.zeros((2, 2)), 30.0)
    magnified = xf.copy()
    magnified[1, :, :2] *= 1.02  # moves a corner by 0.02 * 44.5 / 1.02 = 0.87 px
    with pytest.raises(ValueError, match="view 1 is not a rotation by the common"):
        alignment_from_xf(magnified, shape)
    _, alpha = alignment_from_xf(magnified, shape, max_error=1.0)  # within a looser bound
    assert alpha == pytest.approx(30.0, abs=1e-9)
    per_view = xf_from_alignment(np.zeros((2, 2)), 30.0)
    per_view[1, :, :2] = rot(-32.0)  # views 2° apart, each 1° from the mean: 0.78 px
    with pytest.raises(ValueError, match="not a rotation by the common tilt-axis angle"):
        alignment_from_xf(per_view, shape)
    mirrored = xf.copy()
    mirrored[0, 0, :2] *= -1
    with pytest.raises(ValueError, match="view 0 mirrors the image"):
        alignment_from_xf(mirrored, shape)
    with pytest.raises(ValueError, match="must be in pixels of this image"):
        xf_from_alignment(np.array([[70.0, 0.0]]), 0.0, shape)


def test_read_imod_alignment_gives_a_series_with_shifts_and_tilt_axis(tmp_path, blob_volume):
    angles = np.array([-40.0, 0.0, 35.0])
    shifts = np.array([[2.5, -1.25], [-3.0, 0.75], [1.5, 2.0]])
    raw = wedge.project(blob_volume, angles, shifts=shifts, tilt_axis_angle=85.3, model="ray-3d")
    stack = write_tiltseries(tmp_path / "ts.st", wedge.TiltSeries(raw, angles, pixel_size=3.0))
    (tmp_path / "ts.tlt").unlink()  # the angles must come from the given file
    write_xf(tmp_path / "ts.xf", xf_from_alignment(shifts, 85.3))
    tlt = tmp_path / "refined.tlt"
    tlt.write_text("".join(f"{a:.2f}\n" for a in angles + 0.5))
    series = read_imod_alignment(stack, tmp_path / "ts.xf", tlt)
    np.testing.assert_allclose(series.angles, angles + 0.5)
    # .xf precision: matrix to 1e-7, shifts to 1e-3 px -> measured max 4e-4 px here
    np.testing.assert_allclose(series.shifts, shifts, atol=1e-3)
    assert series.tilt_axis_angle == pytest.approx(85.3, abs=1e-5)  # measured 5.5e-7°
    assert series.pixel_size == pytest.approx(3.0)
    assert "ts.xf" in series.source
    two = write_tiltseries(tmp_path / "two.st", wedge.TiltSeries(raw[:2], angles[:2]))
    with pytest.raises(ValueError, match="has 3 transforms but the stack has 2 views"):
        read_imod_alignment(two, tmp_path / "ts.xf", two.with_suffix(".tlt"))


# ---------------------------------------------------------------------------- AreTomo .aln

ALN = """# AreTomo Alignment / Priims bprmMn
# RawSize = 64 48 4
# NumPatches = 0
# DarkFrame =     0    0   -60.00
# SEC     ROT         GMAG       TX          TY      SMEAN     SFIT    SCALE     BASE     TILT
    1    85.2000    1.00000      2.969     13.163     1.00     1.00     1.00     0.00    -30.00
    2    85.2000    1.00000     -0.643      7.221     1.00     1.00     1.00     0.00      0.00
    3    85.2000    1.00000      1.688    -11.949     1.00     1.00     1.00     0.00     30.00
# Local Alignment
   0   0    10.00     20.00      0.50      0.25   1.0
"""


def test_read_aln_matches_aretomos_own_imod_export(tmp_path):
    p = tmp_path / "ts.aln"
    p.write_text(ALN)
    aln = read_aln(p)
    np.testing.assert_array_equal(aln.sections, [1, 2, 3])
    np.testing.assert_array_equal(aln.angles, [-30.0, 0.0, 30.0])
    np.testing.assert_array_equal(aln.dark_sections, [0])
    assert aln.raw_size == (64, 48, 4)
    assert aln.tilt_axis_angle == pytest.approx(85.2)
    # AreTomo2's exporter (ImodUtil/CSaveXF.cpp) writes each row as the .xf line
    # A = R(-ROT), D = R(-ROT) (-TX, -TY); read back by wedge it must give the same
    # shifts and axis as read_aln (local-alignment rows are not read)
    tx_ty = np.array([[2.969, 13.163], [-0.643, 7.221], [1.688, -11.949]])
    a = rot(-85.2)
    xf = np.stack([np.concatenate([a, (a @ -t)[:, None]], axis=1) for t in tx_ty])
    shifts, alpha = alignment_from_xf(xf, (48, 64))
    np.testing.assert_allclose(aln.shifts, shifts, atol=1e-12)
    assert aln.tilt_axis_angle == pytest.approx(alpha, abs=1e-9)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace("1.00000      2.969", "1.05000      2.969"), "GMAG 1.05"),
        (lambda s: s.replace("  0.00    -30.00", "  -30.00"), "expected the 10 columns"),
        (lambda s: "# RawSize = 64 48 5\n", "no global-alignment rows"),
    ],
)
def test_read_aln_refuses_what_it_cannot_read(tmp_path, edit, message):
    p = tmp_path / "bad.aln"
    p.write_text(edit(ALN))
    with pytest.raises(ValueError, match=message):
        read_aln(p)


def test_transform_functions_never_modify_their_inputs(tmp_path, smooth_image):
    xf = xf_of(*CASES["rotation+skew+shift"])
    shifts = np.array([[1.5, -2.0]])
    img, xf_before, shifts_before = smooth_image.copy(), xf.copy(), shifts.copy()
    apply_xf(smooth_image, xf)
    invert_xf(xf)
    compose_xf(xf, xf)
    write_xf(tmp_path / "k.xf", xf)
    alignment_from_xf(xf_from_alignment(shifts, 10.0), (50, 64))
    np.testing.assert_array_equal(smooth_image, img)
    np.testing.assert_array_equal(xf, xf_before)
    np.testing.assert_array_equal(shifts, shifts_before)
