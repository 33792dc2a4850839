"""Multislice / single-slice phase-retrieval tomography: seconds per iteration and peak memory,
against one SIRT iteration of the same size.

    .venv/bin/python benchmarks/bench_phase.py [--sizes 128 256] [--tilts 60] [--defocus 3]
        [--iterations 2] [--device cpu|cuda] [--threads 1]
        [--methods multislice singleslice sirt]

Each (method, size) runs in a fresh subprocess: ``wedge.reconstruct`` on a synthetic series
(n_tilts × n_defocus images of N², intensities near 1, pixel 0.5 Å, 300 kV; the run time
does not depend on the values) for ``--iterations`` iterations. Seconds per iteration are
taken from the runner's history after the first iteration (which also fills the rotation
grid cache); SIRT gets the same tilts with one image per tilt. Peak memory: CPU, growth of
the peak resident set (VmHWM after clear_refs) over the resident set before the run;
CUDA, torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np, torch
import wedge
from wedge.optics import Microscope
method, dev = sys.argv[1], sys.argv[6]
torch.set_num_threads(int(sys.argv[7]))
n, n_tilts, n_df, iters = (int(a) for a in sys.argv[2:6])
rng = np.random.default_rng(0)
ang = -90.0 + 180.0 * np.arange(n_tilts) / n_tilts
if method == "sirt":
    imgs = rng.uniform(0.9, 1.1, (n_tilts, n, n)).astype(np.float32)
    s = wedge.TiltSeries(imgs, ang, pixel_size=0.5)
    kw = {}
else:
    imgs = rng.uniform(0.9, 1.1, (n_tilts, n_df, n, n)).astype(np.float32)
    s = wedge.TiltSeries(imgs, ang, pixel_size=0.5, defocus=np.linspace(200.0, 1000.0, n_df),
                         microscope=Microscope(cs=1e5))
    kw = {}
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
if dev == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
else:
    open("/proc/self/clear_refs", "w").write("5"); base = status("VmRSS:")
t = time.perf_counter()
r = wedge.reconstruct(s, method, iterations=iters, progress=False, device=dev, **kw)
total = time.perf_counter() - t
if dev == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated() - base
else:
    peak = status("VmHWM:") - base
ts = [h["time_s"] for h in r.history]
per = (ts[-1] - ts[0]) / (len(ts) - 1) if len(ts) > 1 else ts[0]
print(json.dumps({"method": method, "n": n, "tilts": n_tilts,
                  "defocus": n_df if method != "sirt" else 1,
                  "s_per_iteration": per, "first_iteration_s": ts[0], "total_s": total,
                  "peak_MiB": peak / 2**20, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128])
    ap.add_argument("--tilts", type=int, default=60)
    ap.add_argument("--defocus", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--methods", nargs="+", default=["multislice", "singleslice", "sirt"])
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        for m in args.methods:
            iters = max(args.iterations, 3) if m == "sirt" else args.iterations
            cmd = [sys.executable, "-c", CHILD, m, str(n), str(args.tilts), str(args.defocus),
                   str(iters), args.device, str(args.threads)]  # fmt: skip
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                print(f"{m} {n}: failed\n{res.stderr[-2000:]}")
                continue
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| size | method | images | s / iteration | × SIRT | peak memory MiB |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        sirt = next((r for r in rows if r["n"] == n and r["method"] == "sirt"), None)
        for r in (r for r in rows if r["n"] == n):
            ratio = f"{r['s_per_iteration'] / sirt['s_per_iteration']:.1f}" if sirt else "–"
            print(
                f"| {n}³ | {r['method']} | {r['tilts']} × {r['defocus']} | "
                f"{r['s_per_iteration']:.2f} | {ratio} | {r['peak_MiB']:.0f} |"
            )


if __name__ == "__main__":
    main()
