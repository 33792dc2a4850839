"""Boundary checks: project/backproject (angle units, complex input, dtypes), XYZ reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wedge import AngleUnitWarning, backproject, project
from wedge.atoms.xyz import AtomicModel, read_xyz

DEGREES = np.linspace(-60.0, 60.0, 9)
SHAPE = (6, 8, 8)


def _volume(dtype=np.float32) -> np.ndarray:
    v = np.zeros(SHAPE, dtype=dtype)
    v[2:4, 3:6, 2:5] = 3
    return v


def _euler(theta: np.ndarray) -> np.ndarray:
    e = np.zeros((theta.size, 3))
    e[:, 1] = theta
    return e


# ----------------------------------------------------------------------------- angle units


def test_project_warns_when_angles_look_like_radians():
    with pytest.warns(AngleUnitWarning, match="radians"):
        project(_volume(), np.deg2rad(DEGREES))


def test_backproject_warns_when_euler_theta_looks_like_radians():
    images = np.ones((DEGREES.size, SHAPE[1], SHAPE[2]), np.float32)
    with pytest.warns(AngleUnitWarning, match="euler theta"):
        backproject(images, euler=_euler(np.deg2rad(DEGREES)), volume_shape=SHAPE)


# ----------------------------------------------------------------------------- backproject args


def test_backproject_with_euler_needs_no_angles():
    images = project(_volume(), DEGREES)
    by_angles = backproject(images, DEGREES, SHAPE)
    by_euler = backproject(images, euler=_euler(DEGREES), volume_shape=SHAPE)
    np.testing.assert_allclose(by_euler, by_angles, rtol=1e-5, atol=1e-5)


def test_backproject_without_angles_or_euler_asks_for_one():
    images = np.ones((3, SHAPE[1], SHAPE[2]), np.float32)
    with pytest.raises(ValueError, match=r"give the tilt angles \(angles=.*or.*euler="):
        backproject(images, volume_shape=SHAPE)


# ----------------------------------------------------------------------------- complex / dtypes


def test_project_refuses_complex_numpy_volume():
    with pytest.raises(ValueError, match=r"volume is complex.*\.real.*abs"):
        project(_volume() + 1j, DEGREES)


def test_backproject_refuses_complex_tensor_images():
    images = torch.ones((DEGREES.size, SHAPE[1], SHAPE[2]), dtype=torch.complex64)
    with pytest.raises(ValueError, match="images is complex"):
        backproject(images, DEGREES, SHAPE)


def test_project_refuses_non_numeric_volume():
    with pytest.raises(ValueError, match="not numeric"):
        project(np.full(SHAPE, "a"), DEGREES)


def test_project_returns_float32_numpy_for_float64_float16_and_int16_volumes():
    reference = project(_volume(np.float32), DEGREES)
    for dtype in (np.float64, np.float16, np.int16):
        out = project(_volume(dtype), DEGREES)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, dtype
        np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-5)


def test_backproject_returns_float32_tensor_on_the_device_of_a_float64_tensor():
    images = torch.ones((DEGREES.size, SHAPE[1], SHAPE[2]), dtype=torch.float64)
    out = backproject(images, DEGREES, SHAPE)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.device == images.device


# ----------------------------------------------------------------------------- XYZ reader


def _xyz(tmp_path, text: str):
    p = tmp_path / "model.xyz"
    p.write_text(text)
    return p


def test_read_xyz_refuses_negative_atom_count(tmp_path):
    p = _xyz(tmp_path, "-2\ncomment\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 1: the atom count is -2; it must be 0"):
        read_xyz(p)


def test_read_xyz_names_line_of_non_integer_atom_count(tmp_path):
    p = _xyz(tmp_path, "two\ncomment\nAu 0 0 0\nAu 1 0 0\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 1: expected the atom count.*'two'"):
        read_xyz(p)


def test_read_xyz_refuses_nan_coordinate_with_its_line(tmp_path):
    p = _xyz(tmp_path, "2\ncomment\nAu 0 0 0\nAu 1 nan 0\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 4: y = 'nan' is not finite"):
        read_xyz(p)


def test_read_xyz_names_line_and_axis_of_non_numeric_coordinate(tmp_path):
    p = _xyz(tmp_path, "2\ncomment\nAu 0 0 0\nAu 1 0 1,5\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 4: z = '1,5' is not a number"):
        read_xyz(p)


def test_read_xyz_names_line_of_short_atom_line(tmp_path):
    p = _xyz(tmp_path, "2\ncomment\nAu 0 0 0\nAu 1 0\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 4: expected 4 columns"):
        read_xyz(p)


def test_read_xyz_names_line_of_unknown_element(tmp_path):
    p = _xyz(tmp_path, "2\ncomment\nAu 0 0 0\nQq 1 0 0\n")
    with pytest.raises(ValueError, match=r"model\.xyz, line 4: unknown element symbol 'Qq'"):
        read_xyz(p)


def test_read_xyz_names_count_of_missing_atom_lines(tmp_path):
    p = _xyz(tmp_path, "3\ncomment\nAu 0 0 0\nAu 1 0 0\n")
    with pytest.raises(ValueError, match="line 1 announces 3 atoms but only 2 atom line"):
        read_xyz(p)


def test_read_xyz_refuses_surplus_atom_lines_but_not_trailing_blank_lines(tmp_path):
    assert len(read_xyz(_xyz(tmp_path, "1\ncomment\nAu 0 0 0\n\n  \n"))) == 1
    p = _xyz(tmp_path, "1\ncomment\nAu 0 0 0\nAu 1 0 0\n")
    with pytest.raises(ValueError, match=r"line 4: 1 non-blank line\(s\) follow the 1 atom"):
        read_xyz(p)


def test_read_xyz_refuses_a_second_frame(tmp_path):
    p = _xyz(tmp_path, "1\nframe 0\nAu 0 0 0\n1\nframe 1\nAu 0 0 1\n")
    with pytest.raises(ValueError, match=r"line 4: a second frame starts here"):
        read_xyz(p)


def test_atomic_model_refuses_nan_positions():
    with pytest.raises(ValueError, match="NaN or Inf"):
        AtomicModel(np.array([[0.0, np.nan, 0.0]]), np.array([79]), ())
