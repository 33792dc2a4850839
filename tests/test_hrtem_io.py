"""HRTEM tilt + focal series on disk: write, read back, refuse inconsistent sidecars."""

from __future__ import annotations

import json

import numpy as np
import pytest

import wedge
from wedge.atoms.xyz import AtomicModel
from wedge.cli import main
from wedge.hrtem import hrtem_tilt_series, write_hrtem_series
from wedge.io.hrtem import write_hrtem
from wedge.optics import Microscope

MIC = Microscope(
    energy=200e3,
    cs=1.2e7,
    c5=3e7,
    astigmatism=15.0,
    astigmatism_angle=30.0,
    aperture=25.0,
    cc=1.4e7,
    energy_spread=0.8,
    illumination_semiangle=0.05,
)


@pytest.fixture(scope="module")
def series():
    """3 tilts × 2 defocus values of three atoms on 24² pixels."""
    model = AtomicModel(
        np.array([[0.0, 0.0, 0.0], [2.0, -1.0, 1.0], [-2.5, 1.5, -0.5]]),
        np.array([78, 46, 6]),
        (),
    )
    return hrtem_tilt_series(
        model,
        angles=[-30.0, 0.0, 30.0],
        defocus=[100.0, 400.0],
        microscope=MIC,
        voxel_size=0.4,
        shape=(24, 24, 24),
        focal_samples=2,
        tilt_samples=1,
        dose=2e3,
        device="cpu",
    )


@pytest.mark.parametrize("target", ["", "hrtem.json", "images.mrc"])
def test_hrtem_series_round_trip(series, tmp_path, target):
    write_hrtem_series(series, tmp_path)
    ts = wedge.read_tiltseries(tmp_path / target)
    assert ts.images.shape == (3, 2, 24, 24)
    np.testing.assert_array_equal(ts.images, series.images)
    np.testing.assert_array_equal(ts.angles, series.angles)
    np.testing.assert_array_equal(ts.defocus, np.tile(series.defocus, (3, 1)))
    assert ts.microscope == MIC
    assert ts.pixel_size == series.pixel_size and ts.euler is None
    assert "3 tilts × 2 defocus values" in ts.source


def test_hrtem_series_round_trip_keeps_euler_and_per_tilt_defocus(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 8, 10)).astype(np.float32)
    euler = np.array([[5.0, -20.0, 1.5], [0.0, 20.0, -2.0]])
    defocus = np.array([[10.0, 60.0, 110.0], [12.5, 62.5, 112.5]])
    write_hrtem(
        tmp_path, images, euler[:, 1], defocus, pixel_size=0.35, microscope=MIC, euler=euler
    )
    ts = wedge.read_tiltseries(tmp_path)
    np.testing.assert_array_equal(ts.images, images)
    np.testing.assert_array_equal(ts.euler, euler)
    np.testing.assert_array_equal(ts.defocus, defocus)
    assert ts.pixel_size == 0.35 and ts.microscope == MIC


def test_hrtem_sidecar_with_wrong_n_defocus_is_refused(series, tmp_path):
    write_hrtem_series(series, tmp_path)
    side = tmp_path / "hrtem.json"
    meta = json.loads(side.read_text())
    meta["n_defocus"] = 3
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"images\.mrc holds 6 images .* 3 tilts × 3 defocus"):
        wedge.read_tiltseries(tmp_path)


def test_hrtem_sidecar_with_wrong_defocus_table_is_refused(series, tmp_path):
    write_hrtem_series(series, tmp_path)
    side = tmp_path / "hrtem.json"
    meta = json.loads(side.read_text())
    meta["defocus_A"] = meta["defocus_A"][:2]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"'defocus_A' has shape \(2, 2\) .* 3 × 2 table"):
        wedge.read_tiltseries(tmp_path / "images.mrc")


def test_hrtem_angle_file_with_wrong_count_is_refused(series, tmp_path):
    write_hrtem_series(series, tmp_path)
    (tmp_path / "angles.tlt").write_text("-30\n30\n")
    with pytest.raises(ValueError, match="angles.tlt gives 2 tilt angles .* declares 3 tilts"):
        wedge.read_tiltseries(tmp_path)


def test_hrtem_version1_layout_is_read(series, tmp_path):
    """The sidecar earlier wedge versions wrote: microscope keys without units, the focal
    series only in defocus.txt (one value per line)."""
    write_hrtem_series(series, tmp_path)
    old = {
        "pixel_size_A": series.pixel_size,
        "dose_per_image_e_per_A2": series.dose,
        "n_tilts": 3,
        "n_defocus": 2,
        "image_order": "tilt-major",
        "microscope": {
            k: getattr(MIC, k) for k in ("energy", "cs", "c5", "aperture", "illumination_semiangle")
        },
    }
    (tmp_path / "hrtem.json").write_text(json.dumps(old))
    (tmp_path / "defocus.txt").write_text("100.0000\n400.0000\n")
    ts = wedge.read_tiltseries(tmp_path)
    np.testing.assert_array_equal(ts.images, series.images)
    np.testing.assert_array_equal(ts.defocus, [[100.0, 400.0]] * 3)
    assert ts.microscope == Microscope(
        energy=200e3, cs=1.2e7, c5=3e7, aperture=25.0, illumination_semiangle=0.05
    )


def test_cli_simulate_hrtem_output_reads_back(tmp_path, capsys):
    xyz = tmp_path / "tiny.xyz"
    xyz.write_text("3\ntiny\nAu 0 0 0\nAu 2.0 0 0\nC 0 2.0 1.0\n")
    out = tmp_path / "hr"
    code = main(
        ["simulate", "--hrtem", "--phantom", str(xyz), "--tilt-range", "-20", "20", "--step",
         "20", "--defocus", "0", "100", "--pixel-size", "0.5", "--cs", "1.3", "-o", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    ts = wedge.read_tiltseries(out)
    assert ts.images.ndim == 4 and ts.images.shape[:2] == (3, 2)
    np.testing.assert_allclose(ts.angles, [-20.0, 0.0, 20.0])
    np.testing.assert_array_equal(ts.defocus, [[0.0, 100.0]] * 3)
    assert ts.microscope == Microscope(energy=300e3, cs=1.3e7)
    assert ts.pixel_size == 0.5
