"""Tests for wedge.io: atomic writes, angle files, tilt-series and volume round trips, real data."""

from __future__ import annotations

import logging
import os
import re
import shutil
import warnings

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import torch

from conftest import shared_data
from wedge import TiltSeries
from wedge.io import (
    atomic_output,
    describe,
    read_angles,
    read_tiltseries,
    read_volume,
    read_volume_with_voxel,
    write_angles,
    write_tiltseries,
    write_volume,
)

ANGLES = np.arange(-60.0, 61.0, 15.0)  # 9 tilts


def _series(rng, **kw) -> TiltSeries:
    imgs = rng.normal(size=(ANGLES.size, 6, 7)).astype(np.float32)
    return TiltSeries(imgs, ANGLES, **kw)


def _leftovers(directory) -> list[str]:
    return [p.name for p in directory.iterdir() if ".wedge-tmp-" in p.name]


# ----------------------------------------------------------------------------- atomic_output


def test_atomic_output_success_keeps_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "out.mrc"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.suffix == ".mrc" and tmp.name.startswith(f".out.mrc.wedge-tmp-{os.getpid()}-")
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert _leftovers(tmp_path) == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600


def test_atomic_output_exception_leaves_nothing(tmp_path):
    target = tmp_path / "vol.h5"
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_exception_keeps_previous_file(tmp_path):
    target = tmp_path / "a.tlt"
    target.write_text("old\n")
    with pytest.raises(KeyError), atomic_output(target) as tmp:
        tmp.write_text("new\n")
        raise KeyError("x")
    assert target.read_text() == "old\n"
    assert _leftovers(tmp_path) == []


def test_atomic_output_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_output(tmp_path / "nope" / "a.npy"):
            pass


def test_writer_failure_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_volume(tmp_path / "v.mrc", np.full((2, 3, 4), np.nan))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- angle files


def test_read_angles_text_formats(tmp_path):
    (tmp_path / "a.tlt").write_text("  -10.5\n\n  0.0\n 10.25\n\n")
    (tmp_path / "b.txt").write_text("# comment\n1\n2\n")
    (tmp_path / "c.csv").write_text("index,tilt_angle,dose\n0,-3,1\n1,4.5,1\n")
    (tmp_path / "d.csv").write_text("-1\n2\n")
    np.testing.assert_array_equal(read_angles(tmp_path / "a.tlt"), [-10.5, 0.0, 10.25])
    np.testing.assert_array_equal(read_angles(tmp_path / "b.txt"), [1.0, 2.0])
    np.testing.assert_array_equal(read_angles(tmp_path / "c.csv"), [-3.0, 4.5])
    np.testing.assert_array_equal(read_angles(tmp_path / "d.csv"), [-1.0, 2.0])


def test_read_angles_rejects_bad_files(tmp_path):
    (tmp_path / "two.tlt").write_text("1 2\n3 4\n")
    (tmp_path / "empty.tlt").write_text("\n\n")
    (tmp_path / "multi.csv").write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match="one tilt angle per line"):
        read_angles(tmp_path / "two.tlt")
    with pytest.raises(ValueError, match="no tilt angles"):
        read_angles(tmp_path / "empty.tlt")
    with pytest.raises(ValueError, match="header"):
        read_angles(tmp_path / "multi.csv")


def _mdoc_text(angles, pixel=None, axis=None, order=None):
    lines = ["PixelSpacing = 9.99" if pixel is None else f"PixelSpacing = {pixel}", "DataMode = 1"]
    if axis is not None:
        lines.append(f"\n[T = SerialEM: Digitized   Tilt axis angle = {axis}, binning = 2]")
    for k in order if order is not None else range(len(angles)):
        lines += [f"\n[ZValue = {k}]", f"TiltAngle = {angles[k]:.2f}", "Magnification = 1000"]
        if pixel is not None:
            lines.append(f"PixelSpacing = {pixel}")
    return "\n".join(lines) + "\n"


def test_read_angles_mdoc_orders_by_zvalue(tmp_path):
    a = np.array([0.0, 3.0, -3.0, 6.0])
    (tmp_path / "s.mrc.mdoc").write_text(_mdoc_text(a, order=[2, 0, 3, 1]))
    np.testing.assert_array_equal(read_angles(tmp_path / "s.mrc.mdoc"), a)


def test_write_angles_round_trip(tmp_path):
    a = np.array([-61.123456, 0.0, 1e-6, 70.5])
    write_angles(tmp_path / "x.tlt", a)
    np.testing.assert_allclose(read_angles(tmp_path / "x.tlt"), a, atol=1e-6, rtol=0)
    assert _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", ["s.mrc", "s.st", "s.ali", "s.tif", "s.tiff", "s.h5", "s.npy"])
def test_tiltseries_round_trip(tmp_path, rng, name):
    ts = _series(rng, pixel_size=2.75, tilt_axis_angle=-12.5)
    out = write_tiltseries(tmp_path / name, ts)
    assert out == tmp_path / name and out.is_file()
    back = read_tiltseries(out)
    np.testing.assert_array_equal(back.images, ts.images)
    assert back.images.dtype == np.float32
    np.testing.assert_allclose(back.angles, ANGLES, atol=1e-6)
    assert back.pixel_size == pytest.approx(2.75, rel=1e-6)
    assert back.tilt_axis_angle == pytest.approx(-12.5, abs=1e-4)
    assert str(out) in back.source
    assert _leftovers(tmp_path) == []
    if not name.endswith(".h5"):
        np.testing.assert_allclose(read_angles(tmp_path / "s.tlt"), ANGLES, atol=1e-6)


def test_hdf5_round_trip_keeps_shifts_euler_defocus(tmp_path, rng):
    n = ANGLES.size
    euler = np.stack([np.full(n, 3.0), ANGLES, rng.normal(size=n)], axis=1)
    shifts = rng.normal(size=(n, 2))
    defocus = rng.uniform(1e3, 2e3, size=(n, 2))
    ts = _series(rng, pixel_size=0.4, euler=euler, shifts=shifts, defocus=defocus)
    back = read_tiltseries(write_tiltseries(tmp_path / "s.hdf5", ts))
    np.testing.assert_array_equal(back.euler, euler)
    np.testing.assert_array_equal(back.shifts, shifts)
    np.testing.assert_array_equal(back.defocus, defocus)
    assert back.pixel_size == 0.4


def test_written_mrc_is_valid_mrc2014_with_voxel_size(tmp_path, rng):
    path = write_tiltseries(tmp_path / "s.mrc", _series(rng, pixel_size=3.5))
    with open(tmp_path / "log.txt", "w") as log:
        assert mrcfile.validate(str(path), print_file=log)
    with mrcfile.open(path) as m:
        assert m.data.dtype == np.float32 and m.is_image_stack()
        assert m.voxel_size.x == pytest.approx(3.5)


def test_tiff_written_is_readable_by_tifffile(tmp_path, rng):
    ts = _series(rng)
    write_tiltseries(tmp_path / "s.tif", ts)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), ts.images)


# ----------------------------------------------------------------------------- discovery


def _plain_stack(tmp_path, rng, name="stack.npy"):
    imgs = rng.normal(size=(ANGLES.size, 5, 5)).astype(np.float32)
    np.save(tmp_path / name, imgs)
    return tmp_path / name


def test_discovery_order_tlt_rawtlt_mdoc(tmp_path, rng):
    path = _plain_stack(tmp_path, rng)
    with pytest.raises(ValueError, match="angles="):
        read_tiltseries(path)
    (tmp_path / "stack.mdoc").write_text(_mdoc_text(ANGLES + 0.5, pixel=4.2, axis=86.3))
    ts = read_tiltseries(path)
    np.testing.assert_allclose(ts.angles, ANGLES + 0.5)
    assert ts.pixel_size == pytest.approx(4.2) and ts.tilt_axis_angle == pytest.approx(86.3)
    assert "stack.mdoc" in ts.source
    (tmp_path / "stack.npy.mdoc").write_text(_mdoc_text(ANGLES + 0.25, pixel=5.0))
    ts = read_tiltseries(path)
    np.testing.assert_allclose(ts.angles, ANGLES + 0.25)
    assert ts.pixel_size == pytest.approx(5.0) and "stack.npy.mdoc" in ts.source
    (tmp_path / "stack.rawtlt").write_text("\n".join(f"{a}" for a in ANGLES + 1))
    ts = read_tiltseries(path)
    np.testing.assert_allclose(ts.angles, ANGLES + 1)
    assert "stack.rawtlt" in ts.source and ts.pixel_size == pytest.approx(5.0)
    (tmp_path / "stack.tlt").write_text("\n".join(f"{a}" for a in ANGLES + 2))
    ts = read_tiltseries(path)
    np.testing.assert_allclose(ts.angles, ANGLES + 2)
    assert "stack.tlt" in ts.source


def test_explicit_arguments_win(tmp_path, rng):
    path = _plain_stack(tmp_path, rng)
    (tmp_path / "stack.tlt").write_text("\n".join(f"{a}" for a in ANGLES + 2))
    (tmp_path / "stack.mdoc").write_text(_mdoc_text(ANGLES, pixel=4.2))
    ts = read_tiltseries(path, angles=ANGLES - 1, pixel_size=7.0, tilt_axis_angle=3.0)
    np.testing.assert_allclose(ts.angles, ANGLES - 1)
    assert (ts.pixel_size, ts.tilt_axis_angle) == (7.0, 3.0)
    (tmp_path / "other.txt").write_text("\n".join(f"{a}" for a in ANGLES - 3))
    ts = read_tiltseries(path, angles=tmp_path / "other.txt")
    np.testing.assert_allclose(ts.angles, ANGLES - 3)
    assert "other.txt" in ts.source


def test_wrong_number_of_angles(tmp_path, rng):
    path = _plain_stack(tmp_path, rng)
    (tmp_path / "stack.tlt").write_text("1\n2\n3\n")
    with pytest.raises(ValueError, match=r"stack\.tlt.*3 tilt angles.*9 images"):
        read_tiltseries(path)
    with pytest.raises(ValueError, match="pixel_size"):
        read_tiltseries(path, angles=ANGLES, pixel_size=-1.0)


def test_source_is_logged(tmp_path, rng, caplog):
    path = write_tiltseries(tmp_path / "s.mrc", _series(rng, pixel_size=2.0))
    with caplog.at_level(logging.INFO, logger="wedge"):
        ts = read_tiltseries(path)
    assert any(ts.source in r.getMessage() and r.name == "wedge" for r in caplog.records)
    assert "s.tlt" in ts.source and "voxel size" in ts.source


def test_synthetic_fei1_extended_header(tmp_path, rng):
    """MRC2014 FEI1 header built with mrcfile's own dtype: angles and pixel size come from it."""
    angles = np.array([-40.0, -20.0, 0.0, 20.0, 40.0])
    dtype = mrcfile.dtypes.get_ext_header_dtype(b"FEI1", "<")
    ext = np.zeros(angles.size, dtype=dtype)
    ext["Metadata size"] = dtype.itemsize
    ext["Alpha tilt"] = angles
    ext["Pixel size X"] = 2.5e-10
    path = tmp_path / "fei.mrc"
    with mrcfile.new(path) as m:
        m.set_data(rng.integers(-300, 300, size=(5, 4, 4)).astype(np.int16))
        m.set_extended_header(ext)
        m.header.exttyp = b"FEI1"
        m.voxel_size = 9.0
    ts = read_tiltseries(path)
    np.testing.assert_allclose(ts.angles, angles)
    assert ts.pixel_size == pytest.approx(2.5)  # FEI header beats the MRC voxel size
    assert "FEI1" in ts.source
    assert read_tiltseries(path, pixel_size=1.5).pixel_size == 1.5


def test_int16_mrc_read_as_signed(tmp_path):
    data = np.array([[[-31880, -1], [0, 32000]]] * 3, dtype=np.int16)
    with mrcfile.new(tmp_path / "i.mrc") as m:
        m.set_data(data)
    ts = read_tiltseries(tmp_path / "i.mrc", angles=[-1.0, 0.0, 1.0])
    assert ts.images.dtype == np.float32
    np.testing.assert_array_equal(ts.images, data.astype(np.float32))


# ----------------------------------------------------------------------------- bad input


def test_truncated_mrc_raises(tmp_path, rng):
    path = write_tiltseries(tmp_path / "t.mrc", _series(rng))
    raw = path.read_bytes()
    path.write_bytes(raw[:-100])
    with pytest.raises(ValueError, match=r"t\.mrc is not a complete, readable MRC file"):
        read_tiltseries(path)
    path.write_bytes(raw[:500])
    with pytest.raises(ValueError, match=r"t\.mrc"):
        read_tiltseries(path)
    with pytest.raises(ValueError, match=r"t\.mrc"):
        read_volume(path)


def test_truncated_npy_tiff_and_garbage_h5_raise(tmp_path, rng):
    path = tmp_path / "t.npy"
    np.save(path, rng.normal(size=(3, 4, 4)))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"t\.npy"):
        read_tiltseries(path, angles=[0.0, 1.0, 2.0])
    tif = write_tiltseries(tmp_path / "t.tif", _series(rng))
    raw = tif.read_bytes()
    tif.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"t\.tif is not a complete"):
        read_tiltseries(tif)
    (tmp_path / "g.h5").write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(ValueError, match=r"g\.h5"):
        read_volume(tmp_path / "g.h5")


@pytest.mark.parametrize("shape", [(5, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("suffix", [".npy", ".mrc", ".tif", ".h5"])
def test_2d_and_4d_rejected(tmp_path, shape, suffix):
    data = np.zeros(shape, np.float32)
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, data)
    elif suffix == ".mrc":
        with mrcfile.new(path) as m:
            m.set_data(data)
    elif suffix == ".tif":
        tifffile.imwrite(path, data, photometric="minisblack")
    else:
        with h5py.File(path, "w") as f:
            f["images"] = data
    with pytest.raises(ValueError, match=rf"{len(shape)}D"):
        read_tiltseries(path, angles=np.zeros(shape[0]))
    with pytest.raises(ValueError, match=rf"{len(shape)}D"):
        read_volume(path)


def test_unsupported_suffix(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_tiltseries(tmp_path / "x.png", angles=[0.0])


# ----------------------------------------------------------------------------- volumes


@pytest.mark.parametrize("suffix", [".mrc", ".npy", ".tif", ".h5"])
def test_volume_round_trip(tmp_path, rng, suffix):
    vol = rng.normal(size=(4, 5, 6))
    out = write_volume(tmp_path / f"v{suffix}", vol, voxel_size=1.75)
    back, voxel = read_volume_with_voxel(out)
    assert back.dtype == np.float32 and back.shape == (4, 5, 6)
    np.testing.assert_array_equal(back, vol.astype(np.float32))
    assert voxel == (1.0 if suffix == ".npy" else pytest.approx(1.75))
    np.testing.assert_array_equal(read_volume(out), back)
    assert _leftovers(tmp_path) == []


def test_volume_mrc_header_and_torch_input(tmp_path):
    vol = torch.arange(24, dtype=torch.float64).reshape(2, 3, 4)
    write_volume(tmp_path / "v.mrc", vol, voxel_size=0.5)
    with mrcfile.open(tmp_path / "v.mrc") as m:
        assert m.is_volume() and m.header.nx == 4 and m.header.nz == 2
        assert m.voxel_size.z == pytest.approx(0.5)
        np.testing.assert_array_equal(m.data, vol.numpy())


def test_write_volume_validates(tmp_path):
    with pytest.raises(ValueError, match="3D"):
        write_volume(tmp_path / "v.mrc", np.zeros((3, 3)))
    with pytest.raises(ValueError, match="voxel_size"):
        write_volume(tmp_path / "v.mrc", np.zeros((2, 2, 2)), voxel_size=0.0)
    with pytest.raises(ValueError, match="real"):
        write_volume(tmp_path / "v.npy", np.zeros((2, 2, 2), complex))
    assert list(tmp_path.iterdir()) == []


def test_read_real_volume_vesicle():
    p = shared_data("vesicle-genfire", "vesicle.mrc")
    vol = read_volume(p)
    assert vol.shape == (64, 64, 64) and vol.dtype == np.float32
    assert np.all(np.isfinite(vol)) and vol.max() > vol.min()


# ----------------------------------------------------------------------------- describe


def test_describe(tmp_path, rng):
    write_tiltseries(tmp_path / "s.mrc", _series(rng, pixel_size=2.0))
    info = describe(tmp_path / "s.mrc")
    assert info["kind"] == "tilt series" and info["shape"] == (9, 6, 7)
    assert info["dtype"] == "float32" and info["pixel_size"] == pytest.approx(2.0)
    np.testing.assert_allclose(info["angles"], ANGLES)
    assert "s.tlt" in info["angles_source"]
    write_volume(tmp_path / "v.h5", np.zeros((3, 4, 5)), voxel_size=6.0)
    info = describe(tmp_path / "v.h5")
    assert info["kind"] == "volume or image stack" and info["angles"] is None
    assert info["shape"] == (3, 4, 5) and info["pixel_size"] == 6.0


# ----------------------------------------------------------------------------- real data


NEEDLE = ("needle-haadf-stem", "HAADF.mrc")


def _log_pixel_nm() -> float:
    text = shared_data("needle-haadf-stem", "HAADF.txt").read_text(errors="replace")
    return float(re.search(r"Image pixel size \[nm\]:\s*([0-9.]+)", text).group(1))


def test_needle_as_shipped():
    ts = read_tiltseries(shared_data(*NEEDLE))
    assert ts.shape == (77, 256, 256)
    np.testing.assert_array_equal(
        ts.angles, read_angles(shared_data("needle-haadf-stem", "HAADF.rawtlt"))
    )
    np.testing.assert_array_equal(ts.angles, np.arange(-76, 77, 2))
    assert ts.pixel_size == pytest.approx(_log_pixel_nm() * 10)
    # mode 1 read as signed int16: the background is near -31880, not +33656
    assert np.median(ts.images) < -30000
    assert ts.images.min() == -31908 and ts.images.max() == 32325


def test_needle_angles_from_fei_header_alone(tmp_path):
    src = shared_data(*NEEDLE)
    assert src.stat().st_size < 20e6
    copy = tmp_path / "needle.mrc"
    shutil.copyfile(src, copy)
    ts = read_tiltseries(copy)
    assert "extended MRC header" in ts.source
    np.testing.assert_array_equal(ts.angles, read_angles(src.with_suffix(".rawtlt")))
    assert ts.pixel_size == pytest.approx(_log_pixel_nm() * 10)
    info = describe(copy)
    assert info["kind"] == "tilt series" and info["dtype"] == "int16"


def _needle_raw_data(path) -> np.ndarray:
    """The stack as mrcfile reads it (its old FEI header needs permissive mode)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with mrcfile.open(path, permissive=True) as m:
            return np.array(m.data)


def test_needle_angles_from_rawtlt_alone(tmp_path):
    src = shared_data(*NEEDLE)
    data = _needle_raw_data(src)
    assert data.dtype == np.int16
    with mrcfile.new(tmp_path / "plain.mrc") as m:  # no extended header: angles only in .rawtlt
        m.set_data(data)
    shutil.copyfile(src.with_suffix(".rawtlt"), tmp_path / "plain.rawtlt")
    ts = read_tiltseries(tmp_path / "plain.mrc")
    assert "plain.rawtlt" in ts.source and ts.pixel_size == 1.0
    np.testing.assert_array_equal(ts.angles, np.arange(-76, 77, 2))
    np.testing.assert_array_equal(ts.images, data.astype(np.float32))


def test_data_exchange_hdf5():
    p = shared_data("tomopy-reference", "tooth.h5")
    ts = read_tiltseries(p)
    with h5py.File(p, "r") as f:
        theta = f["exchange/theta"][()]
        data = f["exchange/data"][()]
    assert ts.shape == data.shape
    np.testing.assert_array_equal(ts.angles, theta)
    assert "exchange/theta" in ts.source
