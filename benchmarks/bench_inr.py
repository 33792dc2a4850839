"""INR training speed: rays per second (forward + backward) and peak memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_inr.py                     # CPU size and paper size
    .venv/bin/python benchmarks/bench_inr.py --device cuda       # on a GPU

One training step is what ``wedge.reconstruct(series, "inr")`` does per batch: ray points
for ``--batch`` random detector pixels (full sample count, ``sample_step`` 1 voxel), the
H-Siren on the points inside the box, the line integrals, Smooth-L1 + α·TV (1024 TV
points, double backward) and Adam. Reported per network (``--nets``, width×depth): steps
per second, rays per second, points inside the box per second, over ``--steps`` steps after
two warm-up steps. Each network runs in its own subprocess. Peak memory: CUDA's
max_memory_allocated, or on the CPU the resident set high-water mark (Linux VmHWM) of the
subprocess above its baseline after imports and data set-up.
The machine line (CPU model, threads, load) is printed: timings on a shared machine are
lower bounds on speed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wedge._cpuinfo import machine_line


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bench(width: int, depth: int, size: int, batch: int, steps: int, device: str) -> dict:
    import wedge
    from wedge.inr.train import INRTraining
    from wedge.methods.inr import INROptions
    from wedge.problem import Problem
    from wedge.runner import holdout_mask

    dev = torch.device(device)
    base = _hwm_kib()
    ang = np.arange(-60.0, 61.0, 15.0)
    rng = np.random.default_rng(0)
    images = rng.random((ang.size, size, size)).astype(np.float32)
    s = wedge.TiltSeries(images, ang)
    prob = Problem(s, (size, size, size), dev)
    opts = INROptions(width=width, depth=depth, batch_size=batch, warmup_epochs=0, ramp_epochs=0)
    w = holdout_mask(images.shape, 0.2, 0, dev)
    alg = INRTraining(prob, opts, w)
    alg.total_epochs = 10**6
    state = alg.init(torch.zeros(prob.volume_shape, device=dev))
    alg._live(state)
    n_train = alg.train_idx.numel()
    need = (steps + 2) * batch
    alg.train_idx = alg.train_idx.repeat(max(1, -(-need // n_train)))[:need]
    # time whole steps: one "epoch" of (steps + 2) batches, minus a 2-batch epoch
    alg.held_idx = alg.held_idx[:0]  # no end-of-epoch evaluation in the timing
    alg.render = lambda shape: torch.zeros(shape, device=dev)  # nor rendering

    def epoch(n_batches: int) -> float:
        alg.train_idx = alg.train_idx[: n_batches * batch]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        alg.step(state, 100)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    full = alg.train_idx
    epoch(2)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    alg.train_idx = full
    t = epoch(steps)
    m, d = alg.pose.effective()
    pts, _ = alg.geom.points(full[:batch], m, d, alg.s_full, None)
    inside = int((pts.abs() <= 1).all(-1).sum())
    peak = (
        torch.cuda.max_memory_allocated(dev)
        if dev.type == "cuda"
        else max(0, _hwm_kib() - base) * 1024
    )
    return {
        "net": f"{width}x{depth}",
        "size": size,
        "samples_per_ray": alg.s_full,
        "inside_points_per_ray": inside / batch,
        "steps_per_s": steps / t,
        "rays_per_s": steps * batch / t,
        "points_per_s": steps * inside / t,
        "peak_bytes": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default="128x3,512x4")
    ap.add_argument("--size", type=int, default=48, help="volume N³ (sets samples per ray)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.child:
        print(machine_line(args.threads))
        for spec in args.nets.split(","):
            cmd = [sys.executable, __file__, "--child", "--nets", spec]
            for k in ("size", "batch", "steps", "threads", "device"):
                cmd += [f"--{k}", str(getattr(args, k))]
            subprocess.run(cmd, check=True)
        return
    for spec in args.nets.split(","):
        w, d = (int(v) for v in spec.split("x"))
        r = bench(w, d, args.size, args.batch, args.steps, args.device)
        print(
            f"{r['net']:>7} on {r['size']}³ ({r['samples_per_ray']} samples/ray, "
            f"{r['inside_points_per_ray']:.1f} inside): {r['steps_per_s']:.2f} steps/s, "
            f"{r['rays_per_s']:.0f} rays/s, {r['points_per_s'] / 1e6:.2f} M points/s, "
            f"peak {r['peak_bytes'] / 1e6:.0f} MB",
            flush=True,
        )


if __name__ == "__main__":
    main()
