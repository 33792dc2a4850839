"""Tracing time for 10⁴ and 10⁵ atoms on CPU (issue 6 benchmark).

A jittered simple-cubic lattice of Gaussian atoms (σ = 1 voxel, 5 voxels apart, two heights)
plus white noise at 3 % of the peak is traced with default options; the script reports the
wall time of :func:`wedge.atoms.trace`, the rounds it ran, and the accuracy against the known
positions (so a fast but wrong run shows).

Run: ``python benchmarks/bench_tracing.py [--atoms 10000 100000] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from wedge._cpuinfo import machine_line
from wedge.atoms.evaluation import compare
from wedge.atoms.tracing import TraceOptions, trace


def lattice_volume(n_atoms: int, spacing: float = 5.0, sigma: float = 1.0, seed: int = 0):
    """(volume (Z, Y, X), true positions (n, 3) as (z, y, x) indices, heights)."""
    rng = np.random.default_rng(seed)
    m = int(np.ceil(n_atoms ** (1 / 3)))
    g = np.arange(m)
    idx = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)[:n_atoms]
    centres = (idx + 1.0) * spacing + rng.uniform(-0.4, 0.4, (len(idx), 3))
    heights = np.where(rng.random(len(idx)) < 0.5, 1.0, 0.6)
    shape = tuple(int((m + 1) * spacing) + 1 for _ in range(3))
    r = int(np.ceil(4 * sigma))
    o = np.arange(-r, r + 1)
    offs = np.stack(np.meshgrid(o, o, o, indexing="ij"), -1).reshape(-1, 3)
    vol = np.zeros(shape, np.float32)
    for s in range(0, len(centres), 20000):  # chunks of atoms, vectorised within
        c = centres[s : s + 20000]
        p = np.round(c).astype(np.int64)[:, None, :] + offs[None]
        val = heights[s : s + 20000, None] * np.exp(
            -0.5 * ((p - c[:, None, :]) ** 2).sum(-1) / sigma**2
        )
        np.add.at(vol, (p[..., 0], p[..., 1], p[..., 2]), val.astype(np.float32))
    vol += rng.normal(0, 0.03, shape).astype(np.float32)
    return vol, centres, heights


def run(n_atoms: int, device: str) -> dict:
    vol, centres, _ = lattice_volume(n_atoms)
    vs = 0.4
    t0 = time.perf_counter()
    tr = trace(vol, vs, TraceOptions(device=device, bond_length=2.0))
    elapsed = time.perf_counter() - t0
    truth = (centres - (np.array(vol.shape) - 1) / 2)[:, ::-1] * vs
    rep = compare(tr, truth, radius=0.8)
    return {
        "atoms": n_atoms,
        "volume": list(vol.shape),
        "device": device,
        "threads": torch.get_num_threads(),
        "trace_s": round(elapsed, 2),
        "rounds": tr.n_iterations,
        "converged": tr.converged,
        "found_pct": round(100 * rep.found_fraction, 3),
        "false_pos_pct": round(100 * rep.false_positive_fraction, 3),
        "error_voxels": round(rep.position_error_rms / 100 / vs, 4),
        "machine": machine_line(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atoms", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(f"# {machine_line()}", flush=True)
    for n in args.atoms:
        print(json.dumps(run(n, args.device)), flush=True)


if __name__ == "__main__":
    main()
