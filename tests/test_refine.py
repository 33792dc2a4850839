"""Angular refinement: recovery of perturbed tilt angles, shifts, the file API, bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import wedge
from wedge.align import RefineOptions, refine_angles, refine_angles_file
from wedge.align.refine import _brute_search, _gradient_search, _xcorr_shift
from wedge.io.angles import write_angles


def _object(shape=(24, 24, 24)):
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in shape), indexing="ij")
    vol = np.zeros(shape, np.float32)
    for cz, cy, cx, r, val in [(0, 0, 0, 8, 0.5), (3, -4, 5, 3, 1.0), (-4, 5, -4, 2.5, 0.8)]:
        vol[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] += val
    return vol


ANGLES = np.arange(-60, 61, 10.0)
WRONG = {2: 1.6, 6: -1.4, 10: 1.2}  # image index → error in degrees


def _data():
    vol = _object()
    b = wedge.project(vol, ANGLES, model="ray", device="cpu")
    start = ANGLES.copy()
    for i, d in WRONG.items():
        start[i] += d
    return b, start


@pytest.mark.parametrize("search", ["brute", pytest.param("gradient", marks=pytest.mark.slow)])
def test_search_finds_true_angles_given_the_object(search):
    """One search against the true object: wrong angles come back to within 0.1°."""
    vol = torch.from_numpy(_object())
    b, start = _data()
    b = torch.from_numpy(b)
    e = torch.tensor(np.c_[np.zeros_like(start), start, np.zeros_like(start)])
    sh = torch.zeros(len(start), 2)
    opts = RefineOptions(
        angles=("theta",),
        search=search,
        step=0.5,
        levels=3,
        model="ray",
        gradient_steps=60,
        learning_rate=0.1,
    )
    if search == "brute":
        new = _brute_search(vol, b, e, sh, e.clone(), opts)
    else:
        new, _ = _gradient_search(vol, b, e, sh.double(), e.clone(), opts)
    err = np.abs(new[:, 1].numpy() - ANGLES)
    assert err.max() < 0.1, err


@pytest.mark.slow
@pytest.mark.parametrize("search", ["brute", "gradient"])
def test_perturbed_angles_are_recovered(search):
    """Reconstruct-and-search rounds from angles with σ = 1° errors (31 tilts, 32³).

    The toy object has little structure, so the angles are weakly determined: three rounds
    bring the RMSE from 0.90° to 0.52° (brute) / 0.55° (gradient), measured. The paper's
    figure (0.16°) is checked on the vesicle by validation/resire_vesicle_study.py
    (measured 0.154°). With 13 tilts instead of 31 the rounds do not converge: the
    reconstruction absorbs the errors.
    """
    angles = np.arange(-60, 61, 4.0)
    vol = _object((32, 32, 32))
    b = wedge.project(vol, angles, model="ray", device="cpu")
    start = angles + np.random.default_rng(1).normal(0, 1.0, angles.size)
    opts = RefineOptions(
        angles=("theta",),
        search=search,
        rounds=3,
        iterations=40,
        step=0.5,
        levels=2,
        gradient_steps=30,
        learning_rate=0.1,
    )
    res = refine_angles(b, start, options=opts, device="cpu")
    rmse = float(np.sqrt(np.mean((res.euler[:, 1] - angles) ** 2)))
    before = float(np.sqrt(np.mean((start - angles) ** 2)))
    assert rmse < 0.7 * before, (before, rmse)
    assert np.all(res.euler[:, [0, 2]] == 0)  # φ, ψ untouched when only θ is refined
    assert res.history[0]["changed"] >= 10


def test_xcorr_shift_recovers_integer_shift():
    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.random((1, 32, 32)).astype(np.float32))
    moved = torch.roll(img, shifts=(2, -3), dims=(1, 2))  # dy = +2, dx = −3
    sh = _xcorr_shift(img, moved, 5.0)
    assert torch.allclose(sh, torch.tensor([[-3.0, 2.0]]), atol=0.05)


def test_file_api_never_overwrites_input(tmp_path):
    b, start = _data()
    stack = tmp_path / "series.npy"
    np.save(stack, b)
    tlt = write_angles(tmp_path / "series.tlt", start)
    digest = hashlib.sha256(tlt.read_bytes()).hexdigest()
    opts = RefineOptions(angles=("theta",), rounds=1, iterations=10, step=0.5, levels=1)
    with pytest.raises(ValueError, match="never overwrites"):
        refine_angles_file(stack, tlt, tlt, options=opts, device="cpu")
    with pytest.raises(ValueError, match="never overwrites"):
        refine_angles_file(stack, tlt, stack, options=opts, device="cpu")
    out = refine_angles_file(stack, tlt, tmp_path / "refined.tlt", options=opts, device="cpu")
    assert hashlib.sha256(tlt.read_bytes()).hexdigest() == digest
    refined = np.loadtxt(out)
    assert refined.shape == ANGLES.shape
    with pytest.raises(ValueError, match="only tilt angles"):
        refine_angles_file(
            stack, tlt, tmp_path / "x.tlt", options=RefineOptions(angles=("phi", "theta"))
        )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(search_range=0.0), "search_range"),
        (dict(search_range=-2.0), "search_range"),
        (dict(step=5.0), "step"),
        (dict(angles=("alpha",)), "angles"),
        (dict(metric="l2"), "metric"),
        (dict(search="random"), "search"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        RefineOptions(**kw)


def test_euler_of_wrong_shape_is_rejected():
    b = np.zeros((4, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"euler must have shape \(4, 3\)"):
        refine_angles(b, np.zeros((4, 2)), device="cpu")
    with pytest.raises(ValueError, match=r"euler must have shape \(4, 3\)"):
        refine_angles(b, np.zeros(5), device="cpu")
