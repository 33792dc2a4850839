"""Out-of-core throughput (voxels per second) against the in-memory reconstruction, on CPU.

Run from the repository root::

    .venv/bin/python benchmarks/bench_outofcore.py                  # (128, 2048, 256), 41 tilts
    .venv/bin/python benchmarks/bench_outofcore.py --ny 1024 --memory 180MB 360MB

One random tilt series (n, Y, X) float32 is written as MRC; then, side by side in this
process, each method runs (a) in memory (``wedge.reconstruct``, stack read, volume written
as MRC) and (b) out of core under each ``--memory`` budget (``wedge.outofcore``, the stack
memory-mapped and the volume streamed into an MRC file). Times include reading the stack
and writing the volume in both cases; throughput is output voxels per second. The page
cache is warm (the stack was just written), so (b) measures the cost of slabbing, not of
the disk. Each child's peak resident set above an 8³ run of the same program (``VmHWM``) is
printed too. Threads: ``torch.get_num_threads()`` (printed).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from wedge._cpuinfo import machine_line

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import torch
    from wedge.outofcore import reconstruct_out_of_core
    import wedge
    stack, out, method, memory, z, it = sys.argv[1:7]
    kw = {"iterations": int(it)} if int(it) else {}
    t = time.perf_counter()
    if memory == "in-memory":
        rec = wedge.reconstruct(wedge.read_tiltseries(stack), method, thickness=int(z),
                                device="cpu", progress=False, **kw)
        rec.save(out)
        slabs = 1
    else:
        res = reconstruct_out_of_core(stack, out, method, memory=memory, thickness=int(z),
                                      device="cpu", **kw)
        slabs = res.plan.n_slabs
    dt = time.perf_counter() - t
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
    print(json.dumps({"s": dt, "slabs": slabs, "hwm": int(hwm) * 1024,
                      "threads": torch.get_num_threads()}))
    """
)


def run_child(script: Path, stack: Path, out: Path, method: str, memory: str, z: int, it: int):
    import json

    cmd = [sys.executable, str(script), str(stack), str(out), method, memory, str(z), str(it)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{method} {memory}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nz", type=int, default=128)
    ap.add_argument("--ny", type=int, default=2048)
    ap.add_argument("--nx", type=int, default=256)
    ap.add_argument("--tilts", type=int, default=41)
    ap.add_argument("--iterations", type=int, default=3, help="SIRT iterations")
    ap.add_argument("--memory", nargs="+", default=["200MB", "400MB"])
    args = ap.parse_args()
    from wedge import TiltSeries
    from wedge.io import write_tiltseries

    print(machine_line())
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        script = d / "child.py"
        script.write_text(_CHILD)
        rng = np.random.default_rng(0)
        angles = np.linspace(-60, 60, args.tilts)
        stack = d / "stack.mrc"
        write_tiltseries(
            stack, TiltSeries(rng.random((args.tilts, args.ny, args.nx), np.float32), angles)
        )
        tiny = d / "tiny.mrc"
        write_tiltseries(tiny, TiltSeries(rng.random((args.tilts, 8, 8), np.float32), angles))
        vox = args.nz * args.ny * args.nx
        print(f"volume ({args.nz}, {args.ny}, {args.nx}) = {4 * vox / 1e6:.0f} MB float32, "
              f"{args.tilts} tilts")  # fmt: skip
        print(f"{'method':<6} {'run':<10} {'slabs':>5} {'time s':>8} {'Mvox/s':>8} "
              f"{'peak−base MB':>13}")  # fmt: skip
        for method, it in (("fbp", 0), ("sirt", args.iterations)):
            base = run_child(script, tiny, d / "t.mrc", method, "in-memory", 8, it)["hwm"]
            for memory in ["in-memory", *args.memory]:
                r = run_child(script, stack, d / "out.mrc", method, memory, args.nz, it)
                name = method if not it else f"{method}×{it}"
                print(f"{name:<6} {memory:<10} {r['slabs']:>5} {r['s']:>8.2f} "
                      f"{vox / r['s'] / 1e6:>8.2f} {(r['hwm'] - base) / 1e6:>13.0f}"
                      f"   (threads {r['threads']})")  # fmt: skip


if __name__ == "__main__":
    main()
