"""Regression tests of the core defects a new user hit (issue "Core"): each failed on the
code before the fix."""

from __future__ import annotations

import dataclasses
import os
import re
import warnings

import numpy as np
import pytest
import torch

import wedge
from wedge.cli import main
from wedge.memory import InsufficientMemoryError, estimate_memory
from wedge.methods.registry import METHODS, RESERVED_NAMES
from wedge.projectors import ProjectorOptions, make_projector
from wedge.runner import RunOptions
from wedge.tiltseries import TiltRangeWarning

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _blob(n=24, centre=(3.0, -2.0, 1.5), width=2.0):
    zz, yy, xx = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    r2 = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (zz - centre[2]) ** 2
    return np.exp(-r2 / (2 * width**2)).astype(np.float32)


def _centroid(v):
    idx = np.meshgrid(*(np.arange(s) for s in v.shape), indexing="ij")
    w = np.clip(v, 0, None)
    return np.array([float((w * i).sum() / w.sum()) for i in idx])


# ------------------------------------------------------------------ 1. in-plane axis + shifts
def test_tilt_axis_with_shifts_fast_path_equals_euler_path():
    """α = 25° and shifts (3, −2) px: the fast path (images rotated by −α, shifts rotated
    with them) and the Euler path (φ = α, ray-3d) reconstruct the blob at the same place."""
    n, alpha = 24, 25.0
    vol = _blob(n)
    ang = np.linspace(-60, 60, 31)
    rng = np.random.default_rng(0)
    shifts = np.array([3.0, -2.0]) + rng.normal(0, 0.3, (ang.size, 2))
    euler = np.stack([np.full(ang.size, alpha), ang, np.zeros(ang.size)], 1)
    # data by the general projector (independent of the image rotation of the fast path)
    imgs = wedge.project(vol, euler=euler, shifts=shifts, model="ray-3d")
    kw = dict(iterations=30, progress=False, device="cpu")
    fast = wedge.reconstruct(
        wedge.TiltSeries(imgs, ang, shifts=shifts, tilt_axis_angle=alpha), "sirt", **kw
    ).volume
    full = wedge.reconstruct(wedge.TiltSeries(imgs, ang, shifts=shifts, euler=euler), "sirt", **kw)
    truth_c = _centroid(vol)
    # measured (SIRT 30 it.): centroid 0.29 voxel from the truth on the fast path (1.13
    # before the fix), 0.22 on the Euler path; the missing wedge biases both a little
    assert np.linalg.norm(_centroid(fast) - truth_c) < 0.45
    assert np.linalg.norm(_centroid(full.volume) - truth_c) < 0.45
    r = np.corrcoef(fast.ravel(), full.volume.ravel())[0, 1]
    assert r > 0.95  # measured 0.983 (0.801 before the fix)


# ------------------------------------------------------------------ 2. never write over inputs
@pytest.fixture
def stack(tmp_path):
    vol = _blob(16)
    ang = np.linspace(-60, 60, 13)
    wedge.TiltSeries(wedge.project(vol, ang), ang).save(tmp_path / "s.mrc")
    return tmp_path / "s.mrc"


@pytest.mark.parametrize("which", ["stack", "angles", "checkpoint"])
def test_reconstruct_refuses_to_write_over_its_inputs(stack, which, capsys):
    tlt = stack.with_suffix(".tlt")
    ckpt = stack.parent / "run.pt"
    before = {p: p.read_bytes() for p in (stack, tlt)}
    out = {"stack": stack, "angles": tlt, "checkpoint": ckpt}[which]
    args = ["reconstruct", str(stack), "--method", "sirt", "--iterations", "2", "-q"]
    args += ["--checkpoint", str(ckpt), "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "never writes over its inputs" in err[0]
    assert {p: p.read_bytes() for p in (stack, tlt)} == before
    assert not ckpt.exists()


def test_checkpoint_may_not_be_the_stack(stack, capsys):
    before = stack.read_bytes()
    args = ["reconstruct", str(stack), "--checkpoint", str(stack), "-q", "-o", "x.mrc"]
    assert main(args) == 2
    assert "never writes over its inputs" in capsys.readouterr().err
    assert stack.read_bytes() == before


# ------------------------------------------------------------------ 3. checkpoints
@pytest.fixture
def small_series():
    vol = _blob(16)
    ang = np.linspace(-60, 60, 13)
    return wedge.TiltSeries(wedge.project(vol, ang), ang)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoint_is_never_unpickled(small_series, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "evil.pt"
    torch.save({"format": "wedge-checkpoint-1", "state": _Payload()}, ckpt)
    with pytest.raises(ValueError, match="not a wedge checkpoint that can be read safely"):
        wedge.reconstruct(small_series, "sirt", iterations=2, checkpoint=ckpt, progress=False)
    assert not (tmp_path / "PWNED").exists()


def _finished(series, tmp_path, method="sirt"):
    ckpt = tmp_path / "run.pt"
    wedge.reconstruct(series, method, iterations=3, checkpoint=ckpt, progress=False)
    return ckpt


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"method": "sart"}, "method is sirt there but sart here"),
        ({"method": "cgls"}, "method is sirt there but cgls here"),
        ({"zero": True}, "the data differ"),
        ({"thickness": 8}, "volume_shape is"),
        ({"relaxation": 0.5}, "options differs|options is"),
    ],
)
def test_checkpoint_of_another_run_is_refused(small_series, tmp_path, change, match):
    ckpt = _finished(small_series, tmp_path)
    series = small_series
    kw = dict(iterations=5, checkpoint=ckpt, progress=False)
    method = change.pop("method", "sirt")
    if change.pop("zero", False):
        series = wedge.TiltSeries(np.zeros_like(series.images), series.angles)
    with pytest.raises(ValueError, match=match):
        wedge.reconstruct(series, method, **kw, **change)


def test_text_file_as_checkpoint_is_one_clear_error(small_series, tmp_path, capsys):
    ckpt = tmp_path / "notes.txt"
    ckpt.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not a wedge checkpoint"):
        wedge.reconstruct(small_series, "sirt", iterations=2, checkpoint=ckpt, progress=False)


def test_holdout_patience_survives_resume(small_series, tmp_path):
    """A run resumed from a checkpoint stops at the same iteration as the uninterrupted one
    (the patience counter is in the checkpoint)."""
    noisy = wedge.TiltSeries(
        small_series.images + np.random.default_rng(1).normal(0, 0.5, small_series.shape),
        small_series.angles,
    )
    kw = dict(holdout=0.2, patience=3, progress=False, checkpoint_every=1)
    full = wedge.reconstruct(noisy, "sirt", iterations=200, **kw)
    assert full.stopped == "holdout"
    stop = len(full.history)
    ckpt = tmp_path / "h.pt"
    # interrupt while the hold-out error is already rising (patience partly used)
    first = stop - 1
    wedge.reconstruct(noisy, "sirt", iterations=first, checkpoint=ckpt, **kw)
    resumed = wedge.reconstruct(noisy, "sirt", iterations=200, checkpoint=ckpt, **kw)
    assert resumed.stopped == "holdout"
    assert len(resumed.history) == stop
    np.testing.assert_array_equal(resumed.volume, full.volume)


def test_checkpoint_with_direct_method_warns_it_is_ignored(small_series, tmp_path):
    ckpt = tmp_path / "fbp.pt"
    with pytest.warns(UserWarning, match="direct method: the checkpoint .* is ignored"):
        wedge.reconstruct(small_series, "fbp", checkpoint=ckpt, progress=False)
    assert not ckpt.exists()


# ------------------------------------------------------------------ 4. memory guard
def test_huge_volume_is_refused_before_any_work(small_series):
    with pytest.raises(InsufficientMemoryError, match=r"needs about .* but only .* is free"):
        wedge.reconstruct(small_series, "sirt", volume_shape=(4096,) * 3, progress=False)


def test_huge_thickness_on_the_cli_is_one_line(stack, tmp_path, capsys):
    out = tmp_path / "r.mrc"
    assert main(["reconstruct", str(stack), "--thickness", "10000000", "-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("wedge: error:") and "needs about" in err[0]
    assert not out.exists()


def test_memory_error_at_the_cli_is_one_line(stack, tmp_path, capsys, monkeypatch):
    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(wedge.api, "reconstruct", boom)
    assert main(["reconstruct", str(stack), "-q", "-o", str(tmp_path / "r.mrc")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "out of memory" in err[0]


@pytest.mark.parametrize("model", ["ray", "voxel"])
def test_sparse_matrix_estimate_bounds_the_real_matrix(model):
    """The estimate is an upper bound of the built matrices, and not a loose one."""
    geom = wedge.Geometry.single_axis(np.arange(-60, 61, 3.0), (40, 8, 48))
    op = make_projector(geom, model)
    name = op.name
    est = estimate_memory((40, 8, 48), geom.data_shape, work_volumes=0, work_images=0,
                          projector=name).parts[f"projector {name}"]  # fmt: skip
    assert op.matrix_bytes <= est < 2.0 * op.matrix_bytes


# ------------------------------------------------------------------ 5. option names and types
def test_no_method_option_clashes_with_reconstruct_or_runner():
    import inspect

    api = set(inspect.signature(wedge.reconstruct).parameters) - {"options"}
    runner = {f.name for f in dataclasses.fields(RunOptions)}
    assert api | runner <= RESERVED_NAMES
    for info in METHODS.values():
        names = {f.name for f in dataclasses.fields(info.options)}
        assert not names & (api | runner), info.name


def test_genfire_seed_is_the_runner_seed(small_series):
    kw = dict(iterations=3, progress=False)
    a = wedge.reconstruct(small_series, "genfire", seed=1, **kw).history[-1]["r_free"]
    b = wedge.reconstruct(small_series, "genfire", seed=1, **kw).history[-1]["r_free"]
    c = wedge.reconstruct(small_series, "genfire", seed=2, **kw).history[-1]["r_free"]
    assert a == b and a != c


def test_resire_volume_thickness_and_step_thickness_both_work(small_series):
    r = wedge.reconstruct(
        small_series, "resire", thickness=8, step_thickness=16, iterations=2, progress=False
    )
    assert r.volume.shape == (8, 16, 16)


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ("positivity=maybe", "positivity must be bool"),
        ("tol=abc", "tol must be float or None"),
        ("relaxation=[1]", "relaxation must be float"),
        ("order=7", "order must be str"),
    ],
)
def test_set_values_are_type_checked(stack, tmp_path, capsys, setting, match):
    out = tmp_path / "r.mrc"
    args = ["reconstruct", str(stack), "--method", "sart", "--set", setting, "-q", "-o", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.search(match, err[0]), err[0]
    assert not out.exists()


# ------------------------------------------------------------------ 6. projector options
def test_projector_options_reach_the_projector(small_series):
    geom = small_series.geometry()
    op = make_projector(geom, "ray", n_sub=1)
    b = torch.from_numpy(small_series.images)
    from wedge.methods.registry import get_method

    want = get_method("sirt").function(
        op, b, 4, None, (), options=METHODS["sirt"].options(), run=RunOptions(progress=False)
    )
    got = wedge.reconstruct(small_series, "sirt", iterations=4, progress=False,
                            projector=ProjectorOptions(n_sub=1))  # fmt: skip
    default = wedge.reconstruct(small_series, "sirt", iterations=4, progress=False)
    np.testing.assert_allclose(got.volume, want.x.numpy(), atol=1e-6)
    assert np.abs(default.volume - got.volume).max() > 1e-3


def test_projector_option_on_the_cli_and_in_wedge_methods(stack, tmp_path, capsys):
    out = tmp_path / "r.mrc"
    args = ["reconstruct", str(stack), "--iterations", "2", "-q", "-o", str(out)]
    assert main([*args, "--projector", "n_sub=1"]) == 0
    assert main([*args, "--model", "fourier", "--projector", "n_sub=1"]) == 2
    assert "n_sub applies to ray-sparse and voxel-sparse" in capsys.readouterr().err
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert "n_sub: int or None" in listing and "--set relaxation: float = 1.0" in listing


# ------------------------------------------------------------------ 8. one name, one thing
def test_wedge_methods_is_the_subpackage():
    import importlib

    m = importlib.import_module("wedge.methods.resire")
    assert m.RESIREOptions is wedge.methods.RESIREOptions
    assert "sirt" in wedge.list_methods() and not callable(wedge.methods)


# ------------------------------------------------------------------ 10. validation gaps
def test_angle_sets_that_cannot_mean_a_tomogram():
    imgs = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="same orientation"):
        wedge.TiltSeries(imgs, [10, 10, 10, 10])
    with pytest.warns(TiltRangeWarning, match="repeat an orientation"):
        wedge.TiltSeries(imgs, [-20, 0, 0, 20])
    with pytest.warns(TiltRangeWarning, match="beyond ±90"):
        wedge.TiltSeries(imgs, [60, 80, 100, 120])
    with pytest.raises(ValueError, match="beyond ±360"):
        wedge.TiltSeries(imgs, [0, 100, 200, 400])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wedge.TiltSeries(imgs, [0, 60, 120, 180])  # a full-rotation series is fine


def test_empty_series_and_fractional_thickness_are_refused():
    with pytest.raises(ValueError, match="empty"):
        wedge.TiltSeries(np.zeros((0, 8, 8)), [])
    s = wedge.TiltSeries(np.zeros((3, 8, 8), np.float32), [-10, 0, 10])
    with pytest.raises(ValueError, match="whole number of voxels"):
        wedge.reconstruct(s, "bp", thickness=2.7)


def test_wedge_info_warns_about_radian_angles(tmp_path, capsys):
    ang = np.deg2rad(np.linspace(-60, 60, 9))
    p = tmp_path / "r.mrc"
    with pytest.warns(wedge.AngleUnitWarning):
        wedge.TiltSeries(np.zeros((9, 8, 8), np.float32), ang).save(p)
    assert main(["info", str(p)]) == 0
    assert "look like radians" in capsys.readouterr().err


def test_checkpoint_state_is_plain_tensors_and_numbers(small_series, tmp_path):
    """What a checkpoint holds loads under weights_only=True (no pickled objects)."""
    for method in ("sirt", "cgls", "resire", "sart"):
        ckpt = tmp_path / f"{method}.pt"
        wedge.reconstruct(small_series, method, iterations=2, checkpoint=ckpt, progress=False)
        payload = torch.load(ckpt, weights_only=True)
        assert payload["identity"]["method"] == method
