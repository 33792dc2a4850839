"""Particle tables, RELION Euler mapping, extraction of copies, and ``wedge average``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile
import torch

from conftest import astra_project
from wedge import TiltSeries
from wedge.average import crm, default_support, place_operator
from wedge.average.particles import (
    MrcCopies,
    extract_copies,
    matrix_to_euler,
    read_particles,
    relion_to_wedge,
)
from wedge.cli import main
from wedge.geometry import euler_to_matrix

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _xmipp_matrix(rot, tilt, psi):
    """RELION/Xmipp Euler_angles2matrix, written out element by element."""
    a, b, g = np.deg2rad([rot, tilt, psi])
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array(
        [
            [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
            [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
            [sc, ss, cb],
        ]
    )


def test_relion_zyz_angles_map_to_wedge_angles_with_the_same_matrix():
    rng = np.random.default_rng(0)
    angles = rng.uniform([-180, 0, -180], [180, 180, 180], (20, 3))
    wedge_angles = relion_to_wedge(angles[:, 0], angles[:, 1], angles[:, 2])
    got = euler_to_matrix(torch.tensor(np.deg2rad(wedge_angles))).numpy()
    for a, m in zip(angles, got, strict=True):
        np.testing.assert_allclose(m, _xmipp_matrix(*a), atol=1e-12)


def test_matrix_to_euler_round_trips_including_gimbal_lock():
    rng = np.random.default_rng(1)
    e = rng.uniform([-180, -89, -180], [180, 89, 180], (50, 3))
    e = np.vstack([e, [[30.0, 90.0, 0.0], [-40.0, -90.0, 0.0]]])
    m = euler_to_matrix(torch.tensor(np.deg2rad(e))).numpy()
    back = euler_to_matrix(torch.tensor(np.deg2rad(matrix_to_euler(m)))).numpy()
    np.testing.assert_allclose(back, m, atol=1e-10)


def test_relion_identity_and_pure_tilt():
    np.testing.assert_allclose(relion_to_wedge(0, 0, 0), [[0, 0, 0]], atol=1e-12)
    # RELION's A for tilt β alone is Ry(−β) (passive): wedge θ = −β
    np.testing.assert_allclose(relion_to_wedge(0, 30, 0), [[0, -30, 0]], atol=1e-12)


def test_read_star_with_origins_in_angstrom(tmp_path):
    df = pd.DataFrame(
        {
            "rlnCoordinateX": [10.0, 20.0],
            "rlnCoordinateY": [5.0, 6.0],
            "rlnCoordinateZ": [7.0, 8.0],
            "rlnAngleRot": [0.0, 10.0],
            "rlnAngleTilt": [0.0, 20.0],
            "rlnAnglePsi": [0.0, 30.0],
            "rlnOriginXAngst": [2.0, 0.0],
            "rlnOriginYAngst": [0.0, -4.0],
            "rlnOriginZAngst": [0.0, 0.0],
        }
    )
    path = tmp_path / "p.star"
    starfile.write({"particles": df}, path)
    t = read_particles(path, pixel_size=2.0)
    np.testing.assert_allclose(t.positions, [[9, 5, 7], [20, 8, 8]])
    np.testing.assert_allclose(t.euler[1], relion_to_wedge(10, 20, 30)[0])


def test_star_without_needed_columns_is_refused(tmp_path):
    path = tmp_path / "bad.star"
    starfile.write(
        {"particles": pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0]})}, path
    )
    with pytest.raises(ValueError, match="lacks the column.*rlnCoordinateZ"):
        read_particles(path)
    path2 = tmp_path / "bad2.star"
    starfile.write(
        {"particles": pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0],
                                    "rlnCoordinateZ": [3.0], "rlnAngleRot": [0.0]})},
        path2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="rlnAngleTilt, rlnAnglePsi"):
        read_particles(path2)
    path3 = tmp_path / "none.star"
    starfile.write({"optics": pd.DataFrame({"rlnVoltage": [300.0]})}, path3)
    with pytest.raises(ValueError, match="no data block with rlnCoordinateX"):
        read_particles(path3)
    path4 = tmp_path / "relion5.star"
    centred = {f"rlnCenteredCoordinate{a}Angst": [1.0] for a in "XYZ"}
    starfile.write({"particles": pd.DataFrame(centred)}, path4)
    with pytest.raises(ValueError, match="RELION 5's rlnCenteredCoordinate"):
        read_particles(path4)


def test_read_csv(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("x,y,z,phi,theta,psi\n1,2,3,10,20,30\n4,5,6,0,0,0\n")
    t = read_particles(path)
    np.testing.assert_allclose(t.positions, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(t.euler[0], [10, 20, 30])
    (tmp_path / "q.csv").write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_particles(tmp_path / "q.csv")


def _tomogram_2d():
    """A (16, 1, 96) slab with two copies of a disc among blocks, projected by ASTRA."""
    rng = np.random.default_rng(3)
    n_obj = 11
    sup = default_support((n_obj, 1, n_obj))
    zz, xx = np.mgrid[:n_obj, :n_obj] - (n_obj - 1) / 2
    obj = ((zz / 4.5) ** 2 + (xx / 3) ** 2 <= 1).astype(np.float32)[:, None, :] * sup
    tomo = np.zeros((16, 1, 96), np.float32)
    for _ in range(6):
        z0, x0 = rng.integers(0, 12, 1)[0], rng.integers(0, 92, 1)[0]
        tomo[z0 : z0 + 4, :, x0 : x0 + 4] = 0.5
    centres = [(30, 0, 8), (66, 0, 7)]  # (x, y, z) voxel indices
    for x, _, z in centres:
        region = tomo[z - 5 : z + 6, :, x - 5 : x + 6]
        region[sup] = 0
        region += obj
    angles = np.arange(-45, 46, 5.0)
    return TiltSeries(astra_project(tomo, angles), angles), np.array(centres, float), obj


def test_crm_on_copies_extracted_from_a_tilt_series_recovers_the_object():
    """Copies cut from the tomogram's ASTRA-projected series, through the whole slab."""
    from wedge.average.particles import ParticleTable
    from wedge.metrics import pearson

    series, centres, obj = _tomogram_2d()
    table = ParticleTable(centres, np.zeros((2, 3)))
    copies, poses = extract_copies(series, table, (1, 41), thickness=16)
    assert poses.shape == (2, 6) and np.all(poses[:, :3] == 0)
    assert copies[0].images.shape == (series.n_tilts, 1, 41)
    r = crm(copies, poses, obj.shape, iterations=20)
    assert pearson(r.object, obj) > 0.9  # measured 0.933


def test_extraction_refuses_particles_at_the_edge():
    series, centres, _ = _tomogram_2d()
    from wedge.average.particles import ParticleTable

    with pytest.raises(ValueError, match="particle 0 .* too close to the edge"):
        extract_copies(
            series, ParticleTable(np.array([[5.0, 0, 8]]), np.zeros((1, 3))), (1, 41), thickness=16
        )


def test_mrc_copies_stream_equal_in_memory_copies(tmp_path):
    import mrcfile

    series, centres, obj = _tomogram_2d()
    from wedge.average.particles import ParticleTable

    copies, poses = extract_copies(
        series, ParticleTable(centres, np.zeros((2, 3))), (1, 41), thickness=16
    )
    paths = []
    for i, c in enumerate(copies):
        p = tmp_path / f"c{i}.mrc"
        with mrcfile.new(p) as m:
            m.set_data(c.images)
        paths.append(p)
    streamed = MrcCopies(paths, series.angles, shifts=[c.shifts for c in copies])
    a = crm(copies, poses, obj.shape, iterations=3).object
    b = crm(streamed, poses, obj.shape, iterations=3).object
    np.testing.assert_array_equal(a, b)


def test_cli_average_writes_volumes_report_and_refuses_bad_tables(tmp_path, capsys):
    series, centres, obj = _tomogram_2d()
    stack = tmp_path / "tomo.mrc"
    series.save(stack)
    table = tmp_path / "p.csv"
    table.write_text("x,y,z\n" + "".join(f"{x},{y},{z}\n" for x, y, z in centres))
    ref = tmp_path / "ref.mrc"
    from wedge.io import write_volume

    write_volume(ref, obj)
    out = tmp_path / "out"
    rc = main(
        ["average", str(stack), "--particles", str(table), "--box", "41", "--thickness", "16",
         "--object-size", "11", "--reference", str(ref), "--backgrounds", "-o", str(out)]
    )  # fmt: skip
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    for n in ("crm.mrc", "simple.mrc", "masked-fourier.mrc", "report.html", "metrics.json",
              "orthoslices.png", "fsc.png", "fsc_pairs.png", "backgrounds"):  # fmt: skip
        assert n in names
    assert "crm: RMS re-projection error" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    out2 = tmp_path / "out2"
    rc = main(
        [
            "average",
            str(stack),
            "--particles",
            str(bad),
            "--box",
            "41",
            "--thickness",
            "16",
            "-o",
            str(out2),
        ]
    )
    assert rc == 2 and not out2.exists()
    assert "lacks the column" in capsys.readouterr().err


def test_place_operator_of_extracted_pose_is_a_crop():
    op = place_operator(np.zeros(6), (11, 1, 11), (41, 1, 41))
    assert op.identity_rows and op.nnz == 121


def test_subtomogram_copies_reproject_the_box_and_keep_the_subvoxel_offset():
    from wedge.average.particles import ParticleTable, subtomogram_copies

    tomo = np.zeros((20, 20, 30), np.float32)
    tomo[9, 12, 10] = 1.0  # a point at (x, y, z) = (10, 12, 9)
    table = ParticleTable(np.array([[10.3, 12.0, 9.0]]), np.zeros((1, 3)))
    angles = np.arange(-30, 31, 15.0)
    copies, poses = subtomogram_copies(tomo, table, 8, angles)
    # even box: its centre (3.5) is half a voxel beyond the rounded voxel (index 3)
    np.testing.assert_allclose(poses[0, :3], [0.3 - 0.5, -0.5, -0.5], atol=1e-12)
    assert copies[0].images.shape == (5, 8, 8)
    # the point sits at box index (3, 3, 3): every image has its unit of mass in row y = 3
    # ray-sampled mass of a point: measured within 0.011 of 1
    np.testing.assert_allclose(copies[0].images.sum(axis=(1, 2)), 1.0, atol=0.02)
    assert np.all(copies[0].images[:, 3, :].sum(1) > 0.98)
    with pytest.raises(ValueError, match="leaves the tomogram"):
        subtomogram_copies(
            tomo, ParticleTable(np.array([[1.0, 1, 1]]), np.zeros((1, 3))), 8, angles
        )


def test_cli_average_runs_on_a_3d_tomogram(tmp_path, capsys):
    """3D: two blobs in a (12, 20, 48) slab, ASTRA projections, 16-pixel boxes."""
    zz, yy, xx = np.mgrid[:12, :20, :48]
    tomo = np.zeros((12, 20, 48), np.float32)
    for x in (14, 33):
        tomo += np.exp(-((zz - 6) ** 2 + (yy - 10) ** 2 + (xx - x) ** 2) / 4.0)
    angles = np.arange(-40, 41, 10.0)
    stack = tmp_path / "tomo.mrc"
    TiltSeries(astra_project(tomo, angles), angles).save(stack)
    table = tmp_path / "p.csv"
    table.write_text("x,y,z\n14,10,6\n33,10,6\n")
    out = tmp_path / "out"
    rc = main(
        ["average", str(stack), "--particles", str(table), "--box", "16", "--thickness", "12",
         "--object-size", "9", "--iterations", "3", "-o", str(out)]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    from wedge.io import read_volume

    vol = read_volume(out / "crm.mrc")
    assert vol.shape == (9, 9, 9)
    assert np.unravel_index(np.argmax(vol), vol.shape) == (4, 4, 4)  # the blob's centre
