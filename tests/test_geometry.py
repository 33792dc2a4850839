"""Geometry value object, TiltSeries validation and the conventions in docs/conventions.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wedge
from wedge import Geometry, TiltSeries
from wedge.geometry import euler_to_matrix, rotation_y
from wedge.preprocess import rotate_images
from wedge.projectors import project


def test_geometry_is_an_immutable_value_object():
    g = Geometry.single_axis([-30, 0, 30], (8, 6, 10), shifts=[[1, 0], [0, 0], [0, -2]])
    assert eval(repr(g), {"Geometry": Geometry}) == g  # repr evaluates back
    assert hash(g) == hash(eval(repr(g), {"Geometry": Geometry}))
    with pytest.raises(AttributeError):
        g.voxel_size = 2.0  # type: ignore[misc]
    sub = g[1:]
    assert sub.n_images == 2 and np.allclose(sub.angles, [0, 30])
    assert np.allclose(sub.shifts_array, [[0, 0], [0, -2]])
    assert g[[0, 2]] == Geometry.single_axis([-30, 30], (8, 6, 10), shifts=[[1, 0], [0, -2]])
    assert g.to("cpu") == g and g.to("meta").device == "meta"
    assert g.data_shape == (3, 6, 10)
    assert g.replace(voxel_size=2.5).voxel_size == 2.5 and g.voxel_size == 1.0


def test_geometry_validation():
    with pytest.raises(ValueError, match="volume_shape"):
        Geometry((4, 4), (4, 4), [[0, 0, 0]])
    with pytest.raises(ValueError, match="euler must have shape"):
        Geometry((4, 4, 4), (4, 4), [[0, 0]])
    with pytest.raises(ValueError, match="shifts must have shape"):
        Geometry((4, 4, 4), (4, 4), [[0, 0, 0]], shifts=[[0, 0], [1, 1]])
    with pytest.raises(ValueError, match="NaN"):
        Geometry((4, 4, 4), (4, 4), [[0, np.nan, 0]])
    with pytest.raises(ValueError, match="voxel_size"):
        Geometry((4, 4, 4), (4, 4), [[0, 0, 0]], voxel_size=0)


def test_euler_convention():
    """R = Z(φ) Y(θ) X(ψ); (0, β, 0) is the tilt β: u = x cos β + z sin β."""
    b = np.deg2rad(35.0)
    r = euler_to_matrix(torch.tensor([0.0, b, 0.0], dtype=torch.float64))
    p = torch.tensor([2.0, -1.0, 3.0], dtype=torch.float64)
    u, v, _ = (r @ p).tolist()
    assert u == pytest.approx(2 * np.cos(b) + 3 * np.sin(b))
    assert v == pytest.approx(-1.0)
    assert torch.allclose(r, rotation_y(torch.tensor(b, dtype=torch.float64)))
    e = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    m = euler_to_matrix(e)
    assert torch.allclose(m @ m.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert float(torch.linalg.det(m)) == pytest.approx(1.0)
    # composition order: Z(φ) applied last
    rz = euler_to_matrix(torch.tensor([0.3, 0, 0], dtype=torch.float64))
    ry = euler_to_matrix(torch.tensor([0, -0.7, 0], dtype=torch.float64))
    rx = euler_to_matrix(torch.tensor([0, 0, 1.1], dtype=torch.float64))
    assert torch.allclose(m, rz @ ry @ rx)


def test_single_axis_detection():
    assert Geometry.single_axis([0, 10], (4, 4, 4)).is_single_axis
    assert not Geometry.single_axis([0, 10], (4, 4, 4), tilt_axis_angle=5).is_single_axis
    assert not Geometry((4, 4, 4), (4, 4), [[1, 0, 0]]).is_single_axis


def test_tiltseries_validation():
    imgs = np.zeros((5, 8, 8), np.float32)
    ang = np.linspace(-60, 60, 5)
    with pytest.raises(ValueError, match="4 angles were given for 5 images"):
        TiltSeries(imgs, ang[:4])
    bad = imgs.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        TiltSeries(bad, ang)
    with pytest.raises(ValueError, match="3D array"):
        TiltSeries(np.zeros((2, 3, 4, 5, 6)), ang[:2])
    with pytest.raises(ValueError, match="pixel_size"):
        TiltSeries(imgs, ang, pixel_size=-1)
    with pytest.warns(wedge.AngleUnitWarning, match="radians"):
        TiltSeries(np.zeros((9, 4, 4)), np.deg2rad(np.linspace(-60, 60, 9)))
    s = TiltSeries(imgs, ang, pixel_size=2.0)
    assert s[1:3].n_tilts == 2 and s[1:3].pixel_size == 2.0
    g = s.geometry(thickness=4)
    assert g.volume_shape == (4, 8, 8) and g.voxel_size == 2.0


def test_tilt_axis_angle_is_undone_by_rotating_images():
    """A series whose tilt axis lies at α (IMOD rotation angle) reconstructs like one at 0°:
    the images rotated by −α equal the single-axis projections (away from the corners)."""
    rng = np.random.default_rng(0)
    n = 33
    zz, yy, xx = np.mgrid[:n, :n, :n] - (n - 1) / 2
    v = np.zeros((n, n, n), np.float32)
    for _ in range(6):
        c = rng.uniform(-7, 7, 3)
        # smooth blobs (σ = 3.5 px) so that bilinear image rotation is accurate
        v += np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2) / 24.0)
    ang = np.array([-50.0, 0.0, 40.0])
    alpha = 28.0
    tilted = project(v, ang, tilt_axis_angle=alpha, model="ray-3d")
    straight = project(v, ang)
    back = rotate_images(torch.from_numpy(tilted), alpha).numpy()
    inner = (slice(None), slice(8, -8), slice(8, -8))
    # bilinear image rotation error on σ = 3.5 px blobs (measured 2.1% of the peak)
    err = np.abs(back - straight)[inner].max() / straight.max()
    assert err < 0.03
    # the wrong sense of rotation is far off (the test can fail)
    wrong = rotate_images(torch.from_numpy(tilted), -alpha).numpy()
    assert np.abs(wrong - straight)[inner].max() / straight.max() > 0.1


def test_backprojection_undoes_tilt_axis_angle_without_shifts():
    """Back-projection (bp) of a series without shifts whose axis lies at 15°. With shifts,
    and SIRT against the Euler path: tests/test_core.py::
    test_tilt_axis_with_shifts_fast_path_equals_euler_path."""
    n = 24
    v = np.zeros((n, n, n), np.float32)
    v[8:16, 6:18, 9:15] = 1
    ang = np.linspace(-60, 60, 25)
    imgs = project(v, ang, tilt_axis_angle=15.0, model="ray-3d")
    s = TiltSeries(imgs, ang, tilt_axis_angle=15.0)
    ref = wedge.reconstruct(TiltSeries(project(v, ang), ang), "bp").volume[:, 6:-6, 6:-6]

    def corr(series):
        r = wedge.reconstruct(series, "bp").volume[:, 6:-6, 6:-6]
        return np.corrcoef(r.ravel(), ref.ravel())[0, 1]

    # measured: 0.989 with the axis angle (bilinear rotation of a sharp box), 0.906 when it
    # is ignored, 0.714 with the wrong sense
    assert corr(s) > 0.98
    assert corr(TiltSeries(imgs, ang)) < 0.95
    assert corr(TiltSeries(imgs, ang, tilt_axis_angle=-15.0)) < 0.8


def test_reconstruct_bad_input():
    s = TiltSeries(np.zeros((3, 8, 8), np.float32), [-10, 0, 10])
    with pytest.raises(ValueError, match="unknown method 'nope'; known methods: .*bp"):
        wedge.reconstruct(s, "nope")
    with pytest.raises(ValueError, match="no option 'bogus'"):
        wedge.reconstruct(s, "bp", bogus=1)
    with pytest.raises(ValueError, match="thickness"):
        wedge.reconstruct(s, "bp", thickness=0)
