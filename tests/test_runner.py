"""The iteration runner, driven by the real methods: early stopping on a relative-change
tolerance, hold-out stopping, callbacks, checkpoints and resume (including a process
killed mid-run), and atomic checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from wedge.geometry import Geometry
from wedge.methods import algebraic as alg
from wedge.methods import cgls as cg
from wedge.projectors import make_projector
from wedge.runner import RunOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


METHODS = {
    "sirt": (alg.sirt, alg.SIRTOptions()),
    "sart": (alg.sart, alg.SARTOptions(order="random")),
    "art": (alg.art, alg.ARTOptions(order="golden")),
    "art-ray": (alg.art, alg.ARTOptions(block="ray", relaxation=0.5)),
    "cgls": (cg.cgls, cg.CGLSOptions()),
    "sirt-pos": (alg.sirt, alg.SIRTOptions(positivity=True)),
}


def _problem(noise: float = 0.0, seed: int = 0, ny: int = 2):
    n = 20
    zz, xx = np.mgrid[:n, :n] - (n - 1) / 2
    disk = (zz**2 + (xx - 2) ** 2 < 7**2).astype(np.float32)
    x = np.repeat(disk[:, None, :], ny, axis=1)
    op = make_projector(Geometry.single_axis(np.linspace(-60, 60, 13), x.shape))
    b = op.forward(torch.from_numpy(x))
    if noise:
        g = torch.Generator().manual_seed(seed)
        b = b + noise * float(b.abs().max()) * torch.randn(b.shape, generator=g)
    return op, b, x


def _run(name, op, b, iterations, **run_kw):
    fn, opts = METHODS[name]
    return fn(op, b, iterations, options=opts, run=RunOptions(progress=False, **run_kw))


def test_history_records_fit_and_reference_metrics():
    op, b, x = _problem(ny=8)  # reference SSIM needs ≥ 7 voxels along every axis
    r = _run("sirt", op, b, 4, reference=x, reference_every=2)
    assert [h["iteration"] for h in r.history] == [1, 2, 3, 4]
    rf = [h["r_factor"] for h in r.history]
    assert all(a > c for a, c in zip(rf, rf[1:], strict=False))  # SIRT decreases the misfit
    assert "pearson" in r.history[1] and "pearson" not in r.history[0]
    # the recorded residual is the true one (not a stale cache)
    res = float(torch.linalg.vector_norm(op.forward(r.x) - b))
    assert np.isclose(r.history[-1]["residual_norm"], res, rtol=1e-4)


def test_early_stopping_on_relative_change():
    op, b, _ = _problem()
    tol = 2e-2
    r = _run("sirt", op, b, 200, tol=tol)
    changes = [h["rel_change"] for h in r.history]
    assert r.stopped == "tolerance" and r.iterations < 200
    assert changes[-1] < tol and all(c >= tol for c in changes[:-1])


def test_holdout_stops_where_the_withheld_error_rises():
    """CGLS on noisy data overfits; the hold-out error has a minimum, the run stops
    `patience` iterations after it and returns the volume at the minimum."""
    op, b, _ = _problem(noise=0.05)
    r = _run("cgls", op, b, 200, holdout=0.15, patience=3, seed=2)
    err = [h["holdout_error"] for h in r.history]
    best = int(np.argmin(err))
    assert r.stopped == "holdout"
    assert len(err) == best + 1 + 3
    again = _run("cgls", op, b, best + 1, holdout=0.15, patience=1000, seed=2)
    assert torch.allclose(r.x, again.x, atol=1e-6)


def test_callback_can_stop_and_sees_every_iteration():
    op, b, _ = _problem()
    seen = []

    def cb(record, x):
        seen.append((record["iteration"], float(x.sum())))
        return record["iteration"] >= 3

    fn, opts = METHODS["sart"]
    r = fn(op, b, 50, callbacks=[cb], options=opts, run=RunOptions(progress=False))
    assert r.stopped == "callback" and r.iterations == 3
    assert [s[0] for s in seen] == [1, 2, 3]
    assert np.isclose(seen[-1][1], float(r.x.sum()))


@pytest.mark.parametrize("name", list(METHODS))
def test_resume_from_checkpoint_equals_uninterrupted_run(tmp_path, name):
    op, b, _ = _problem(noise=0.02)
    straight = _run(name, op, b, 9)
    ck = tmp_path / f"{name}.pt"
    first = _run(name, op, b, 4, checkpoint=ck, checkpoint_every=2)
    assert first.iterations == 4 and ck.exists()
    resumed = _run(name, op, b, 9, checkpoint=ck, checkpoint_every=2)
    assert resumed.iterations == 9  # the history continues from the checkpoint
    assert torch.allclose(resumed.x, straight.x, rtol=1e-5, atol=1e-6)
    rf = [h["r_factor"] for h in resumed.history]
    assert np.allclose(rf, [h["r_factor"] for h in straight.history], rtol=1e-4)


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np, torch
    sys.path.insert(0, {tests!r})
    from test_runner import _problem, METHODS
    from wedge.runner import RunOptions

    op, b, _ = _problem(noise=0.02)
    fn, opts = METHODS[{name!r}]

    def die(record, x):
        if record["iteration"] == 7:  # killed between checkpoints 6 and 8
            os.kill(os.getpid(), signal.SIGKILL)

    fn(op, b, 12, callbacks=[die], options=opts,
       run=RunOptions(progress=False, checkpoint={ck!r}, checkpoint_every=3))
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
@pytest.mark.parametrize("name", ["sart"])  # random order: the seed must survive too
def test_killed_process_resumes_to_the_same_volume(tmp_path, name):
    ck = tmp_path / "run.pt"
    code = _CHILD.format(tests=str(Path(__file__).parent), name=name, ck=str(ck))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    payload = torch.load(ck, weights_only=False)
    assert payload["iteration"] == 6  # the last complete checkpoint survived the kill
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary left behind
    op, b, _ = _problem(noise=0.02)
    resumed = _run(name, op, b, 12, checkpoint=ck, checkpoint_every=3)
    straight = _run(name, op, b, 12)
    assert resumed.iterations == 12
    assert torch.allclose(resumed.x, straight.x, rtol=1e-5, atol=1e-6)


def test_failed_checkpoint_write_leaves_no_partial_file(tmp_path, monkeypatch):
    """A write that dies half-way leaves the previous checkpoint intact and no temporary."""
    op, b, _ = _problem()
    ck = tmp_path / "ck.pt"
    _run("sirt", op, b, 2, checkpoint=ck, checkpoint_every=2)
    before = ck.read_bytes()
    real_save = torch.save

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _run("sirt", op, b, 4, checkpoint=ck, checkpoint_every=2)
    monkeypatch.setattr(torch, "save", real_save)
    assert ck.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
