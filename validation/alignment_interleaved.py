"""Two interleaved tilt series with their own tilt axes: per-subset axis estimate.

Run: ``.venv/bin/python validation/alignment_interleaved.py``

The data of ``tests/test_align_interleaved.py``: Gaussian blobs projected by ASTRA at 61
tilts over ±60° (2° steps); the two interleaved subsets (4° steps) rotated in-plane to
α = 1° and 3° and shifted (σ 2 px) by scipy. Prints each subset's axis, the shift errors
(across the axis with an object translation removed, and also an axis-offset constant),
the SIRT R-factor with per-subset axes against one axis for all, and a control: the same
phantom with one common axis of 1° through the single-axis path.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import wedge  # noqa: E402
from conftest import astra_project, axis_frame, misaligned_images  # noqa: E402
from test_align_coarse import _blob_volume, _rms, _translation_fit  # noqa: E402
from wedge._cpuinfo import machine_line  # noqa: E402
from wedge.align import coarse_align, interleaved_subsets  # noqa: E402

ANGLES = np.linspace(-60.0, 60.0, 61)
AXES = (1.0, 3.0)


def _errors(found: np.ndarray, true: np.ndarray, alphas: np.ndarray) -> str:
    err = np.stack([axis_frame((found - true)[i : i + 1], a)[0] for i, a in enumerate(alphas)])
    b = np.deg2rad(ANGLES)
    design = np.stack([np.ones_like(b), np.cos(b), np.sin(b)], 1)
    coef, *_ = np.linalg.lstsq(design, err[:, 0], rcond=None)
    _, ex = _translation_fit(err[:, 0], ANGLES)
    return (
        f"across {_rms(ex):.3f} px (of which an axis offset {coef[0]:+.2f} px; "
        f"{_rms(err[:, 0] - design @ coef):.3f} px without it), along "
        f"{_rms(err[:, 1] - err[:, 1].mean()):.3f} px"
    )


def main() -> None:
    print(machine_line())
    vol = _blob_volume(seed=3)
    proj = astra_project(vol, ANGLES)
    labels = interleaved_subsets(ANGLES, 2)
    shifts = np.random.default_rng(4).normal(0.0, 2.0, (ANGLES.size, 2))
    shifts[30] = 0.0
    imgs = np.empty_like(proj)
    for k, a in enumerate(AXES):
        m = labels == k
        imgs[m] = misaligned_images(proj[m], a, shifts[m])
    series = wedge.TiltSeries(imgs, ANGLES)
    res = coarse_align(series, subsets=labels)
    for k, a in enumerate(AXES):
        print(f"subset {k}: axis {res.history[0][f'tilt_axis_angle_{k}']:.4f}° (true {a}°)")
    print("shift error, per-subset axes:", _errors(res.shifts, shifts, np.asarray(AXES)[labels]))
    one = coarse_align(series)
    kw = {"iterations": 30, "thickness": 32, "progress": False}
    r_two = wedge.reconstruct(res.series, "sirt", **kw).history[-1]["r_factor"]
    r_one = wedge.reconstruct(one.series, "sirt", **kw).history[-1]["r_factor"]
    print(f"one axis for all: {one.tilt_axis_angle:.3f}°")
    print(f"SIRT 30 it. R-factor: per-subset axes {r_two:.4f}, one axis {r_one:.4f}")
    ctrl = coarse_align(wedge.TiltSeries(misaligned_images(proj, AXES[0], shifts), ANGLES))
    print(
        f"control, one common axis {AXES[0]}° (found {ctrl.tilt_axis_angle:.4f}°): "
        + _errors(ctrl.shifts, shifts, np.full(ANGLES.size, AXES[0]))
    )


if __name__ == "__main__":
    main()
