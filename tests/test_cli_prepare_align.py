"""``wedge preprocess`` then ``wedge align``: the raw-stack-to-aligned-stack commands."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

import wedge
from conftest import shared_data
from wedge.cli import main
from wedge.io.imod import read_xf


@pytest.fixture
def raw_stack(tmp_path):
    """Blobs projected with a 2° tilt axis and shifts of a few pixels, on a background of
    −1000 counts: a stack as a microscope writes it."""
    n = 64
    rng = np.random.default_rng(0)
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    vol = np.zeros((n, n, n), np.float32)
    for c in rng.uniform(-8, 8, (6, 3)):
        vol += np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2) / 8.0)
    ang = np.linspace(-60, 60, 25)
    shifts = rng.normal(0, 2.0, (ang.size, 2))
    imgs = wedge.project(vol, ang, shifts=shifts, tilt_axis_angle=2.0, model="ray-3d")
    imgs = imgs + rng.normal(0, 0.02, imgs.shape).astype(np.float32)  # detector noise
    path = tmp_path / "raw.mrc"
    wedge.TiltSeries(imgs - 1000.0, ang, pixel_size=2.0).save(path)
    return path, shifts


def test_preprocess_then_align_writes_imod_files_and_a_report(raw_stack, tmp_path, capsys):
    raw, true = raw_stack
    before = raw.read_bytes()
    prep = tmp_path / "prep.mrc"
    assert main(["preprocess", str(raw), "--degree", "1", "-o", str(prep)]) == 0
    with mrcfile.open(prep) as f:
        corner = float(np.abs(f.data[:, :4, :4]).mean())
    assert corner < 0.05  # the −1000 background is gone (measured 0.016: the noise)
    out = tmp_path / "ali"
    assert main(["align", str(prep), "--no-quality", "-o", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["prep.xf", "prep.tlt", "prep.ali", "prep_alignment.png", "prep_alignment.json"]
    )
    summary = json.loads((out / "prep_alignment.json").read_text())
    assert abs(summary["tilt_axis_angle_deg"] - 2.0) < 0.25  # measured 0.118° off
    assert read_xf(out / "prep.xf").shape == (25, 2, 3)
    # shifts agree with the truth up to a translation of the object: x0 cos β + z0 sin β
    # across the axis, a constant along it (docs/alignment.md)
    got = np.array(summary["shifts_px"])
    beta = np.deg2rad(np.array(summary["angles_deg"]))
    basis = np.stack([np.cos(beta), np.sin(beta)], 1)
    ex = got[:, 0] - true[:, 0]
    ex = ex - basis @ np.linalg.lstsq(basis, ex, rcond=None)[0]
    ey = (got[:, 1] - true[:, 1]) - (got[:, 1] - true[:, 1]).mean()
    assert float(np.sqrt((ex**2).mean())) < 0.4  # measured 0.237 px
    assert float(np.sqrt((ey**2).mean())) < 0.15  # measured 0.071 px
    assert raw.read_bytes() == before
    assert "wrote" in capsys.readouterr().out


def test_align_with_projection_matching_rounds(raw_stack, tmp_path):
    raw, _ = raw_stack
    prep = tmp_path / "prep.mrc"
    assert main(["preprocess", str(raw), "--degree", "1", "-o", str(prep)]) == 0
    out = tmp_path / "m"
    args = ["align", str(prep), "--no-quality", "--match-rounds", "2", "--thickness", "40"]
    assert main([*args, "-o", str(out)]) == 0
    stages = [h["stage"] for h in json.loads((out / "prep_alignment.json").read_text())["history"]]
    assert stages.count("match") == 2 and "xcorr" in stages


def test_align_refuses_to_write_over_its_input(raw_stack, tmp_path, capsys):
    raw, _ = raw_stack
    # the .tlt align would write beside the stack is the input's own angle file
    assert main(["align", str(raw), "-o", str(raw.parent)]) == 2
    assert "never writes over its inputs" in capsys.readouterr().err


def test_preprocess_refuses_an_output_whose_tlt_is_the_input(raw_stack, capsys):
    raw, _ = raw_stack
    assert main(["preprocess", str(raw), "-o", str(raw.with_suffix(".st"))]) == 2
    assert "never writes over its inputs" in capsys.readouterr().err


def test_needle_two_commands(tmp_path, capsys):
    """The shipped needle stack: preprocess, then align (tilt axis along X, found)."""
    raw = shared_data("needle-haadf-stem", "HAADF.mrc")
    prep = tmp_path / "needle.mrc"
    assert main(["preprocess", str(raw), "--tilt-axis-angle", "90", "-o", str(prep)]) == 0
    out = tmp_path / "ali"
    args = ["align", str(prep), "--no-stretch", "--no-quality", "--no-ali", "-o", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "needle_alignment.json").read_text())
    # measured 92.40° (the log says 90°; see docs/alignment.md for the R-factor scan)
    assert abs(summary["tilt_axis_angle_deg"] - 90.0) < 3.0
    etspy = np.loadtxt(shared_data("needle-haadf-stem", "DERIVED_etspy_alignment.txt"))
    assert etspy.shape[0] == len(summary["shifts_px"])


def test_reconstruct_align_equals_reconstruct_of_the_aligned_series(raw_stack, tmp_path):
    """``reconstruct --align`` reconstructs from exactly the alignment ``wedge.align.align``
    finds (one command instead of two), and that alignment is what makes the volume."""
    from wedge.align import align

    raw, _ = raw_stack
    prep = tmp_path / "prep.mrc"
    assert main(["preprocess", str(raw), "--degree", "1", "-o", str(prep)]) == 0
    common = ["--method", "sirt", "--iterations", "20", "--thickness", "40", "-q"]
    out = tmp_path / "rec.mrc"
    assert main(["reconstruct", str(prep), *common, "--align", "-o", str(out)]) == 0
    plain = tmp_path / "plain.mrc"
    assert main(["reconstruct", str(prep), *common, "-o", str(plain)]) == 0
    series = wedge.read_tiltseries(prep)
    res = align(series, match_rounds=0, coarse_options={"quality": False})
    ref = wedge.reconstruct(res.series, "sirt", iterations=20, thickness=40, progress=False)
    with mrcfile.open(out) as f, mrcfile.open(plain) as g:
        got, unaligned = f.data.copy(), g.data.copy()
    assert np.abs(got - ref.volume).max() <= 1e-5 * np.abs(ref.volume).max()
    corr_plain = np.corrcoef(unaligned.ravel(), ref.volume.ravel())[0, 1]
    assert corr_plain < 0.9  # without --align a different volume (measured 0.670)


def test_reconstruct_align_options_need_align(raw_stack, tmp_path, capsys):
    raw, _ = raw_stack
    assert (
        main(["reconstruct", str(raw), "--align-rounds", "2", "-o", str(tmp_path / "v.mrc")]) == 2
    )
    assert "apply with --align" in capsys.readouterr().err
