"""Time to align a tilt series on the CPU: coarse alignment + 3 rounds of projection matching.

Run: ``.venv/bin/python benchmarks/bench_align.py [--size 512] [--tilts 61]``

Data: a phantom of Gaussian blobs (``wedge.phantoms`` is not used so that the object is a
thin, isolated specimen like a typical sample: thickness = size / 4), projected by wedge's
``ray`` model at ``--tilts`` tilts ±60°, rotated 1.5° in-plane and shifted (σ 3 px) by
``scipy.ndimage`` (the projections' source does not matter for timing). Timed:
``wedge.align.align(series, match_rounds=3, match_options={"thickness": size // 4})`` with
the defaults otherwise (SIRT 30 iterations per round). One run, after a small warm-up
(a 64² align) so that one-time costs are not counted; stage times come from a second
measurement of each stage alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage as ndi

import wedge
from wedge._cpuinfo import machine_line
from wedge.align import align, coarse_align, projection_matching
from wedge.projectors import make_projector


def series_of(size: int, tilts: int, seed: int = 0) -> wedge.TiltSeries:
    rng = np.random.default_rng(seed)
    nz = size // 4
    vol = np.zeros((nz, size, size), np.float32)
    for _ in range(200):  # blobs drawn directly into a small box each (cheap at 512²)
        c = rng.uniform([0.25 * nz, 0.2 * size, 0.2 * size], [0.75 * nz, 0.8 * size, 0.8 * size])
        w = rng.uniform(1.5, 4.0) * size / 128
        r = int(3 * w) + 1
        lo = np.maximum(np.floor(c).astype(int) - r, 0)
        hi = np.minimum(np.floor(c).astype(int) + r + 1, vol.shape)
        g = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij")
        vol[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += np.exp(
            -0.5 * sum((gi - ci) ** 2 for gi, ci in zip(g, c, strict=True)) / w**2
        ).astype(np.float32)
    angles = np.linspace(-60.0, 60.0, tilts)
    geom = wedge.TiltSeries(np.zeros((tilts, size, size), np.float32), angles).geometry(
        volume_shape=vol.shape
    )
    with torch.no_grad():
        proj = make_projector(geom, "ray").forward(torch.from_numpy(vol)).numpy()
    shifts = rng.normal(0, 3.0, (tilts, 2))
    a = np.deg2rad(1.5)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    cen = (np.array([size, size]) - 1) / 2
    imgs = np.stack(
        [
            ndi.affine_transform(p, rot, offset=cen - rot @ (cen + d[::-1]), order=1)
            for p, d in zip(proj, shifts, strict=True)
        ]
    )
    return wedge.TiltSeries(imgs.astype(np.float32), angles)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--stages", action="store_true", help="also time each stage alone")
    args = ap.parse_args()
    print(machine_line())
    t = time.perf_counter()
    s = series_of(args.size, args.tilts)
    print(f"series {s.images.shape} made in {time.perf_counter() - t:.1f} s")
    align(series_of(64, 11, seed=1), match_rounds=1)  # warm-up
    thick = args.size // 4
    t = time.perf_counter()
    res = align(s, match_rounds=3, match_options={"thickness": thick})
    total = time.perf_counter() - t
    print(
        f"align {args.tilts} tilts {args.size}², coarse + 3 rounds matching (SIRT 30 it., "
        f"thickness {thick}): {total:.1f} s; alpha {res.tilt_axis_angle:.2f} (true 1.5)"
    )
    if args.stages:
        t = time.perf_counter()
        c = coarse_align(s)
        tc = time.perf_counter() - t
        t = time.perf_counter()
        projection_matching(c.series, rounds=1, thickness=thick, tol=0.0)
        print(f"  coarse {tc:.1f} s; one matching round {time.perf_counter() - t:.1f} s")
    print(machine_line())


if __name__ == "__main__":
    main()
