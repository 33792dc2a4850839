"""Joint refinement of tilt angles (and shifts) against RESIRE's angular refinement.

Run: ``.venv/bin/python validation/alignment_joint_study.py [--size 32] [--quick]``

Data, independent of wedge's projectors: a (N, N, N) volume of Gaussian blobs projected
slice by slice by ASTRA's 2D parallel ``linear`` projector at 46 tilts over the half-turn
(every 4°, ±90°); recorded tilts with Gaussian errors σ = 1° (seed 1). Case "shifts" also
translates the images by σ = 0.5 px (seed 2, cubic-spline ``scipy.ndimage.shift``).

Reported: tilt RMSE with the mean offset removed (a common offset is a rotation of the
object, not measurable), for

* ``joint`` – :func:`wedge.align.joint_refinement` (Gauss–Newton per image, the default),
* ``joint-adam`` – the same with ``solver="adam"`` (30 Adam steps per round),
* ``resire`` – :func:`wedge.align.refine_angles` (brute search, θ only), on the same data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import wedge  # noqa: E402
from conftest import astra_project  # noqa: E402
from wedge.align import RefineOptions, joint_refinement, refine_angles


def blob_volume(n: int, count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2] * 3, indexing="ij")
    v = np.zeros((n, n, n))
    for _ in range(count):
        c = rng.uniform(-1, 1, 3) * n / 4
        s = rng.uniform(1.2, 2.5, 3) * n / 24
        w = rng.uniform(0.5, 1.0)
        v += w * np.exp(
            -((z - c[0]) ** 2) / (2 * s[0] ** 2)
            - (y - c[1]) ** 2 / (2 * s[1] ** 2)
            - (x - c[2]) ** 2 / (2 * s[2] ** 2)
        )
    return v.astype(np.float32)


def tilt_rmse(est: np.ndarray, true: np.ndarray) -> float:
    return float(np.std(np.asarray(est) - true))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--cases", default="tilts,shifts")
    ap.add_argument("--runs", default="joint,resire")
    ap.add_argument("--warm", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--resire-model", default="fourier")
    ap.add_argument("--resire-iterations", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    n = args.size
    true = np.arange(-90, 90.01, 4.0)
    start = true + np.random.default_rng(1).normal(0, 1.0, true.size)
    vol = blob_volume(n, 30)
    proj = astra_project(vol, true)
    print(f"{n}^3 blobs, {true.size} tilts ±90°; start tilt RMSE {tilt_rmse(start, true):.3f}°")
    for case in args.cases.split(","):
        shifts = np.zeros((true.size, 2))
        images = proj
        refine: tuple[str, ...] = ("tilt",)
        if case == "shifts":
            shifts = np.random.default_rng(2).normal(0, 0.5, (true.size, 2))
            images = np.stack(
                [ndi.shift(p, (s[1], s[0]), order=3) for p, s in zip(proj, shifts, strict=True)]
            ).astype(np.float32)
            refine = ("shifts", "tilt")
        series = wedge.TiltSeries(images, start)
        for run in args.runs.split(","):
            t0 = time.perf_counter()
            if run.startswith("joint"):
                res = joint_refinement(
                    series,
                    refine=refine,
                    rounds=args.rounds,
                    iterations=args.iterations,
                    steps=args.steps,
                    solver="adam" if run == "joint-adam" else "gauss-newton",
                    warm_start=bool(args.warm),
                    tol=0.0,
                    device="cpu",
                )
                est = res.series.angles
                sh = res.shifts
                per_round = [round(float(h["tilt_change_rms"]), 3) for h in res.history]
            else:
                opts = RefineOptions(
                    angles=("theta",),
                    rounds=args.rounds,
                    iterations=args.resire_iterations,
                    model=args.resire_model,
                    refine_shifts=case == "shifts",
                )
                res = refine_angles(series, options=opts, device="cpu")
                est, sh, per_round = res.angles, res.shifts, []
            d = sh - shifts
            extra = ""
            if case == "shifts":
                b = np.deg2rad(true)
                design = np.stack([np.cos(b), np.sin(b)], 1)
                coef, *_ = np.linalg.lstsq(design, d[:, 0], rcond=None)
                across = d[:, 0] - design @ coef
                along = d[:, 1] - d[:, 1].mean()
                extra = (
                    f"; shifts {np.sqrt(np.mean(across**2)):.3f} / "
                    f"{np.sqrt(np.mean(along**2)):.3f} px"
                )
            print(
                f"{case:7s} {run:11s} tilt RMSE {tilt_rmse(est, true):.3f}°{extra}  "
                f"({time.perf_counter() - t0:.0f} s) {per_round}",
                flush=True,
            )


if __name__ == "__main__":
    main()
