"""Strong scaling of slab-parallel SIRT from 1 to 2 gloo ranks on the CPU (torchrun).

Run from the repository root::

    .venv/bin/python benchmarks/bench_distributed.py                 # 256³, 61 tilts
    .venv/bin/python benchmarks/bench_distributed.py --size 128 --iterations 10

The same out-of-core SIRT (``wedge reconstruct --memory``; the whole volume fits the budget
given, so each rank runs its Y rows in slabs as wide as it can) is started with
``torchrun --standalone --nproc_per_node=K`` for K = 1, 2, each rank with
``OMP_NUM_THREADS=--threads``. The time is the one ``wedge`` prints (from the start of the
reconstruction to the renamed output; process start-up and imports excluded), best of
``--repeat``. Speed-up = t(1) / t(K). On a machine shared with other work the figures
reflect the load at the time (note it beside them).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from wedge._cpuinfo import machine_line


def run(ranks: int, stack: Path, out: Path, size: int, iterations: int, threads: int) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={ranks}", "-m", "wedge", "reconstruct", str(stack), "-o", str(out),
           "--method", "sirt", "--iterations", str(iterations), "--thickness", str(size),
           "--memory", "4GB", "--device", "cpu", "-q"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode:
        errors = [ln for ln in done.stderr.splitlines() if "wedge: error" in ln or "Error" in ln]
        raise SystemExit(f"{ranks} ranks failed: {(errors or done.stderr.splitlines())[-1]}")
    m = re.search(r" in ([0-9.]+) s ", done.stdout)
    assert m is not None, done.stdout
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--tilts", type=int, default=61)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from wedge import TiltSeries
    from wedge.io import write_tiltseries

    print(machine_line())
    n = args.size
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        stack = d / "stack.mrc"
        rng = np.random.default_rng(0)
        angles = np.linspace(-60, 60, args.tilts)
        write_tiltseries(stack, TiltSeries(rng.random((args.tilts, n, n), np.float32), angles))
        print(f"slab-parallel SIRT, {n}³, {args.tilts} tilts, {args.iterations} iterations, "
              f"{args.threads} thread(s) per rank")  # fmt: skip
        times = {}
        for k in (1, 2):
            times[k] = min(
                run(k, stack, d / f"out{k}.mrc", n, args.iterations, args.threads)
                for _ in range(args.repeat)
            )
            print(f"  {k} rank(s): {times[k]:.2f} s  speed-up {times[1] / times[k]:.2f}")


if __name__ == "__main__":
    main()
