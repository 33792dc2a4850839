"""Single-axis projector against ASTRA's CPU 2D 'linear' projector looped over Y slices.

Side by side in one run, at 128³ and 256³ with 61 tilts (±60°), wedge and ASTRA timed in
interleaved rounds, best of ``--repeat`` each:

* forward and adjoint through the projector object (tensors in, tensors out);
* forward and adjoint through the NumPy API, ``wedge.project`` / ``wedge.backproject``
  (geometry, projector and system-matrix cache hit included in every call);
* the system-matrix build time (target: < 2 s for 256² slices × 61 tilts) and memory;
* with ``--widths``: forward/adjoint time per Y chunk width (``y_chunk``), the figures
  behind the chunk rule, at the ``--sizes`` cubes and any ``--sweep-shapes`` (ZxYxX).

Everything is repeated for each ``--threads`` count (torch intra-op threads; ASTRA's CPU
projector runs on one thread).

The CPU model, cores, torch threads, L2/L3 sizes and the load average are printed with the
figures. Run with

    .venv/bin/python benchmarks/bench_projector.py [--sizes 128 256] [--repeat 3]
        [--widths 8 16 32 64 128] [--threads 1 2] [--sweep-shapes 512x64x512] [--no-astra]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import wedge
from wedge._cpuinfo import load_average, machine_line
from wedge.geometry import Geometry
from wedge.projectors import make_projector
from wedge.projectors.single_axis import clear_matrix_cache


def astra_pair(vol: np.ndarray, angles: np.ndarray):
    """ASTRA forward and adjoint of the whole volume, one 2D (Z, X) slice per Y row."""
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
            bid, _ = astra.create_backprojection(sino, pid)
            astra.data2d.delete(bid)

    return forward, adjoint


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def interleaved_best(fns: dict, repeat: int) -> dict:
    """Best time of each callable over ``repeat`` rounds, the callables interleaved."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for k, fn in fns.items():
            best[k] = min(best[k], timed(fn))
    return best


def compare(n: int, tilts: int, repeat: int, device: str) -> None:
    angles = np.linspace(-60, 60, tilts)
    vol = np.random.default_rng(0).random((n, n, n), dtype=np.float32)
    clear_matrix_cache()
    geom = Geometry.single_axis(angles, (n, n, n), device=device)
    build = timed(lambda: make_projector(geom, "ray"))
    op = make_projector(geom, "ray")  # cache hit
    x = torch.from_numpy(vol).to(device)
    y = op.forward(x)
    sino = y.cpu().numpy()
    a_fw, a_ad = astra_pair(vol, angles)
    a_fw()  # ASTRA's adjoint reads the sinograms of its forward
    t = interleaved_best(
        {
            "fw": lambda: op.forward(x),
            "astra_fw": a_fw,
            "ad": lambda: op.adjoint(y),
            "astra_ad": a_ad,
            "api_fw": lambda: wedge.project(vol, angles, device=device),
            "api_ad": lambda: wedge.backproject(sino, angles, vol.shape, device=device),
        },
        repeat,
    )
    a_sum = t["astra_fw"] + t["astra_ad"]
    print(
        f"{n}^3, {tilts} tilts, y_chunk {op.y_chunk} | build {build:.2f} s (target < 2 s at "
        f"256^2), matrix {op.matrix_bytes / 1e6:.0f} MB\n"
        f"  forward  wedge {t['fw']:.3f} s, ASTRA {t['astra_fw']:.3f} s, "
        f"ratio {t['astra_fw'] / t['fw']:.1f}x | NumPy API {t['api_fw']:.3f} s, "
        f"ratio {t['astra_fw'] / t['api_fw']:.1f}x\n"
        f"  adjoint  wedge {t['ad']:.3f} s, ASTRA {t['astra_ad']:.3f} s, "
        f"ratio {t['astra_ad'] / t['ad']:.1f}x | NumPy API {t['api_ad']:.3f} s, "
        f"ratio {t['astra_ad'] / t['api_ad']:.1f}x\n"
        f"  forward+adjoint ratio {a_sum / (t['fw'] + t['ad']):.1f}x, "
        f"NumPy API {a_sum / (t['api_fw'] + t['api_ad']):.1f}x | {load_average()}",
        flush=True,
    )


def sweep(shape: tuple[int, int, int], tilts: int, repeat: int, widths: list[int], device: str):
    """Forward and adjoint time per Y chunk width, widths interleaved, best of ``repeat``."""
    nz, ny, nx = shape
    angles = np.linspace(-60, 60, tilts)
    geom = Geometry.single_axis(angles, shape, device=device)
    ops = {w: make_projector(geom, "ray", y_chunk=w) for w in widths if w <= ny}
    default = make_projector(geom, "ray").y_chunk
    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g).to(device)
    y = torch.rand(geom.data_shape, generator=g).to(device)
    fns = {}
    for w, op in ops.items():
        fns[("fw", w)] = lambda op=op: op.forward(x)
        fns[("ad", w)] = lambda op=op: op.adjoint(y)
    t = interleaved_best(fns, repeat)
    print(
        f"  chunk sweep {nz}x{ny}x{nx} (Z, Y, X), {tilts} tilts, {torch.get_num_threads()} "
        f"threads (default y_chunk {default}) | {load_average()}"
    )
    for w in ops:
        mib = 4 * nz * nx * w / 2**20
        print(
            f"    y_chunk {w:4d} (forward operand {mib:6.1f} MiB): forward {t[('fw', w)]:.3f} s, "
            f"adjoint {t[('ad', w)]:.3f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[128, 256])
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--widths", type=int, nargs="*", default=[], help="y_chunk widths to sweep")
    ap.add_argument("--threads", type=int, nargs="*", default=[], help="torch thread counts")
    ap.add_argument(
        "--sweep-shapes", nargs="*", default=[], help="extra ZxYxX volumes for the chunk sweep"
    )
    ap.add_argument("--no-astra", action="store_true", help="only the chunk sweep")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    default_threads = torch.get_num_threads()
    shapes = [(n, n, n) for n in args.sizes]
    shapes += [tuple(int(v) for v in s.split("x")) for s in args.sweep_shapes]
    for shape in shapes:
        cube = shape in [(n, n, n) for n in args.sizes]
        for th in args.threads or [default_threads]:
            torch.set_num_threads(th)
            print(f"-- {machine_line()}", flush=True)
            if cube and not args.no_astra:
                compare(shape[0], args.tilts, args.repeat, args.device)
            if args.widths:
                sweep(shape, args.tilts, args.repeat, args.widths, args.device)
    torch.set_num_threads(default_threads)
    print("figures above measured on:", machine_line())


if __name__ == "__main__":
    main()
