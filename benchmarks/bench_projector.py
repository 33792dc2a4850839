"""Single-axis projector against ASTRA's CPU 2D 'linear' projector looped over Y slices.

Side by side in one run, at 128³ and 256³ with 61 tilts (±60°): forward and adjoint
times, their ratios, the system-matrix build time and memory. Run with

    .venv/bin/python benchmarks/bench_projector.py [--sizes 128 256] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from wedge.geometry import Geometry
from wedge.projectors import make_projector
from wedge.projectors.single_axis import clear_matrix_cache


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def astra_pair(vol: np.ndarray, angles: np.ndarray):
    import astra

    nz, ny, nx = vol.shape
    vg = astra.create_vol_geom(nz, nx)
    pg = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(-angles))
    pid = astra.create_projector("linear", pg, vg)
    slices = [np.ascontiguousarray(vol[:, j, :]) for j in range(ny)]
    sinos = []

    def forward():
        sinos.clear()
        for s in slices:
            sid, sino = astra.create_sino(s, pid)
            astra.data2d.delete(sid)
            sinos.append(sino)

    def adjoint():
        for sino in sinos:
            bid, bp = astra.create_backprojection(sino, pid)
            astra.data2d.delete(bid)

    return forward, adjoint


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    angles = np.linspace(-60, 60, args.tilts)
    rng = np.random.default_rng(0)
    for n in args.sizes:
        vol = rng.random((n, n, n), dtype=np.float32)
        clear_matrix_cache()
        geom = Geometry.single_axis(angles, (n, n, n))
        t = time.perf_counter()
        op = make_projector(geom, "ray")
        build = time.perf_counter() - t
        x = torch.from_numpy(vol)
        y = op.forward(x)
        fw = best_of(lambda: op.forward(x), args.repeat)  # noqa: B023
        ad = best_of(lambda: op.adjoint(y), args.repeat)  # noqa: B023
        a_fw, a_ad = astra_pair(vol, angles)
        afw = best_of(a_fw, 1)
        aad = best_of(a_ad, 1)
        print(
            f"{n}^3, {args.tilts} tilts | build {build:.2f} s, "
            f"matrix {op.matrix_bytes / 1e6:.0f} MB"
            f" | forward wedge {fw:.3f} s, ASTRA {afw:.3f} s, ratio {afw / fw:.1f}x"
            f" | adjoint wedge {ad:.3f} s, ASTRA {aad:.3f} s, ratio {aad / ad:.1f}x"
            f" | forward+adjoint ratio {(afw + aad) / (fw + ad):.1f}x"
        )


if __name__ == "__main__":
    main()
